package pipedrive

import (
	"fmt"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
)

type (
	pdPipeline = pd.Pipeline
	pdStage    = pd.Stage
)

// pipelineList and stageList render reference data for error messages, so
// an agent can correct an id without another call.
func pipelineList(snap snapshot) string {
	var parts []string
	for _, p := range snap.pipelines {
		if !p.IsDeleted {
			parts = append(parts, fmt.Sprintf("%d %s", p.ID, p.Name))
		}
	}
	return strings.Join(parts, ", ")
}

func stageList(snap snapshot, pipelineID int64) string {
	var parts []string
	for _, st := range snap.stagesOf(pipelineID) {
		parts = append(parts, fmt.Sprintf("%d %s", st.ID, st.Name))
	}
	return strings.Join(parts, ", ")
}
