package workspan

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// definition is the WorkSpan certified connector definition (swagger 2.0),
// verbatim; see definition/SOURCES.md.
//
//go:embed definition/apiDefinition.swagger.json
var definition []byte

// BulkInput is what the connector definition says about the input of one
// bulk load operation.
type BulkInput struct {
	// OperationID is the connector operation, e.g. "BulkloadOpportunity".
	OperationID string
	// Summary is its title, e.g. "Bulk Load Opportunities (data in body)".
	Summary string
	// FormatParam is the query parameter naming the format: data_format
	// or content_type.
	FormatParam string
	// Formats are the formats it accepts, DefaultFormat the one it
	// assumes.
	Formats       []string
	DefaultFormat string
	// Layout says how the rows are laid out in the body ("" for a file
	// upload, whose part the definition only calls "file to upload").
	Layout string
	// HeaderRowParam is true when it takes has_header_row.
	HeaderRowParam bool
}

// BulkInputs returns the bulk load operations of the connector definition
// by operation id: BulkloadData, BulkloadDataFileAttachment,
// BulkloadOpportunity and BulkloadOpportunityFileAttachment.
func BulkInputs() map[string]BulkInput {
	return bulkInputs()
}

var bulkInputs = sync.OnceValue(func() map[string]BulkInput {
	in, err := parseBulkInputs(definition)
	if err != nil {
		panic("workspan: the embedded connector definition: " + err.Error())
	}
	return in
})

// swaggerOperation is the part of a swagger 2.0 operation read here.
type swaggerOperation struct {
	OperationID string `json:"operationId"`
	Summary     string `json:"summary"`
	Parameters  []struct {
		Name        string   `json:"name"`
		In          string   `json:"in"`
		Description string   `json:"description"`
		Enum        []string `json:"enum"`
		Default     any      `json:"default"`
	} `json:"parameters"`
}

// parseBulkInputs reads every POST below /bulk/v1/bulkload of a swagger
// document.
func parseBulkInputs(doc []byte) (map[string]BulkInput, error) {
	var sw struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &sw); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(sw.Paths))
	for p := range sw.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := map[string]BulkInput{}
	for _, p := range paths {
		raw, ok := sw.Paths[p]["post"]
		if !ok || !strings.HasPrefix(p, "/bulk/v1/bulkload") {
			continue
		}
		var op swaggerOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			return nil, fmt.Errorf("POST %s: %w", p, err)
		}
		in := BulkInput{OperationID: op.OperationID, Summary: op.Summary}
		for _, prm := range op.Parameters {
			switch {
			case prm.In == "query" && (prm.Name == "data_format" || prm.Name == "content_type"):
				in.FormatParam, in.Formats = prm.Name, prm.Enum
				in.DefaultFormat, _ = prm.Default.(string)
			case prm.In == "query" && prm.Name == "has_header_row":
				in.HeaderRowParam = true
			case prm.In == "body":
				in.Layout = prm.Description
			}
		}
		if in.OperationID == "" || in.FormatParam == "" || len(in.Formats) == 0 {
			return nil, fmt.Errorf("POST %s: no operation id or format parameter", p)
		}
		out[in.OperationID] = in
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bulk load operation")
	}
	return out, nil
}
