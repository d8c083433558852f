package pipedrive

import (
	"context"
	"slices"

	"github.com/cosell-mcp/cosell-mcp/tools"
)

// GetStageArgs are the arguments of pipedrive_get_stage.
type GetStageArgs struct {
	StageID int64 `json:"stage_id" jsonschema:"minimum=1" jsonschema_description:"Stage id."`
}

// Stage is a stage as tools return it.
type Stage struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	PipelineID      int64  `json:"pipeline_id"`
	PipelineName    string `json:"pipeline_name,omitempty"`
	OrderNr         int    `json:"order_nr"`
	DealProbability int    `json:"deal_probability"`
	IsDeleted       bool   `json:"is_deleted,omitempty"`
}

func (s *service) getStage(ctx context.Context, in GetStageArgs) (Stage, error) {
	c, ref := s.at(ctx)
	st, err := c.GetStage(ctx, in.StageID)
	if err != nil {
		return Stage{}, err
	}
	snap, _ := ref.get(ctx, false) // names are best effort
	return Stage{
		ID: st.ID, Name: st.Name, PipelineID: st.PipelineID, PipelineName: snap.pipelineName(st.PipelineID),
		OrderNr: st.OrderNr, DealProbability: st.DealProbability, IsDeleted: st.IsDeleted,
	}, nil
}

// ListPipelinesArgs are the arguments of pipedrive_list_pipelines.
type ListPipelinesArgs struct {
	Refresh bool `json:"refresh,omitempty" jsonschema_description:"Reload from Pipedrive instead of the cache."`
}

// PipelineStage is a stage within a listed pipeline.
type PipelineStage struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	OrderNr         int    `json:"order_nr"`
	DealProbability int    `json:"deal_probability"`
}

// Pipeline is a pipeline with its stages in order.
type Pipeline struct {
	ID     int64           `json:"id"`
	Name   string          `json:"name"`
	Stages []PipelineStage `json:"stages"`
}

// Pipelines is the result of pipedrive_list_pipelines.
type Pipelines struct {
	Pipelines []Pipeline `json:"pipelines"`
}

func (s *service) listPipelines(ctx context.Context, in ListPipelinesArgs) (Pipelines, error) {
	_, ref := s.at(ctx)
	snap, err := ref.get(ctx, in.Refresh)
	if err != nil {
		return Pipelines{}, err
	}
	out := Pipelines{Pipelines: []Pipeline{}}
	ps := slices.Clone(snap.pipelines)
	slices.SortFunc(ps, func(a, b pdPipeline) int { return a.OrderNr - b.OrderNr })
	for _, p := range ps {
		if p.IsDeleted {
			continue
		}
		pl := Pipeline{ID: p.ID, Name: p.Name, Stages: []PipelineStage{}}
		stages := snap.stagesOf(p.ID)
		slices.SortFunc(stages, func(a, b pdStage) int { return a.OrderNr - b.OrderNr })
		for _, st := range stages {
			pl.Stages = append(pl.Stages, PipelineStage{ID: st.ID, Name: st.Name, OrderNr: st.OrderNr, DealProbability: st.DealProbability})
		}
		out.Pipelines = append(out.Pipelines, pl)
	}
	return out, nil
}

// checkStage validates a stage (and optionally its pipeline) against the
// cached reference data, refreshing once when an id is unknown, so that a
// wrong id costs at most the reference reload and never a write.
func checkStage(ctx context.Context, ref *refData, pipelineID, stageID int64) (snapshot, error) {
	snap, err := ref.get(ctx, false)
	if err != nil {
		return snap, err
	}
	_, stageOK := snap.stage(stageID)
	_, pipeOK := snap.pipeline(pipelineID)
	if (stageID != 0 && !stageOK) || (pipelineID != 0 && !pipeOK) {
		if snap, err = ref.get(ctx, true); err != nil {
			return snap, err
		}
	}
	if pipelineID != 0 {
		if _, ok := snap.pipeline(pipelineID); !ok {
			return snap, tools.InvalidArgument("pipeline_id", "pipeline %d does not exist; pipelines: %s", pipelineID, pipelineList(snap))
		}
	}
	if stageID == 0 {
		return snap, nil
	}
	st, ok := snap.stage(stageID)
	if !ok || st.IsDeleted {
		return snap, tools.InvalidArgument("stage_id", "stage %d does not exist; see pipedrive_list_pipelines", stageID)
	}
	if pipelineID != 0 && st.PipelineID != pipelineID {
		return snap, tools.InvalidArgument("stage_id", "stage %d (%s) belongs to pipeline %d (%s), not pipeline %d; stages of pipeline %d: %s",
			stageID, st.Name, st.PipelineID, snap.pipelineName(st.PipelineID), pipelineID, pipelineID, stageList(snap, pipelineID))
	}
	return snap, nil
}
