package workspan

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// StatusArgs are the arguments of workspan_get_bulk_load_status.
type StatusArgs struct {
	IntegrationID string   `json:"integration_id" jsonschema:"minLength=1"`
	ExecutionIDs  []string `json:"execution_ids" jsonschema:"minItems=1,maxItems=50" jsonschema_description:"Execution ids from a bulk load."`
	MaxErrors     int      `json:"max_errors,omitempty" jsonschema:"minimum=0,maximum=100" jsonschema_description:"Row errors to return per execution, default 5."`
	Wait          bool     `json:"wait,omitempty" jsonschema_description:"Poll until every execution completes (or wait_seconds pass)."`
	WaitSeconds   int      `json:"wait_seconds,omitempty" jsonschema:"minimum=1,maximum=600" jsonschema_description:"Longest wait, default 120."`
}

// RowError is one failed row of an execution.
type RowError struct {
	ID      string `json:"id,omitempty"`
	Message string `json:"message"`
	// DataRow is the offending row as compact JSON.
	DataRow string `json:"data_row,omitempty"`
}

// ExecutionStatus is one execution's progress.
type ExecutionStatus struct {
	ExecutionID  string     `json:"execution_id"`
	Status       string     `json:"status" jsonschema:"enum=running,enum=completed"`
	InputCount   int        `json:"input_count"`
	SuccessCount int        `json:"success_count"`
	ErrorCount   int        `json:"error_count"`
	SkipCount    int        `json:"skip_count"`
	StartedAt    string     `json:"started_at,omitempty"`
	CompletedAt  string     `json:"completed_at,omitempty"`
	Errors       []RowError `json:"errors,omitempty"`
}

// StatusResult is the result of workspan_get_bulk_load_status.
type StatusResult struct {
	Executions   []ExecutionStatus `json:"executions"`
	AllCompleted bool              `json:"all_completed"`
	Totals       Totals            `json:"totals"`
	Polls        int               `json:"polls"`
}

// Totals adds up the executions.
type Totals struct {
	Input   int `json:"input"`
	Success int `json:"success"`
	Errors  int `json:"errors"`
	Skipped int `json:"skipped"`
}

func (s *service) bulkStatus(ctx context.Context, in StatusArgs) (StatusResult, error) {
	maxErrors := in.MaxErrors
	if maxErrors == 0 {
		maxErrors = 5
	}
	wait := time.Duration(in.WaitSeconds) * time.Second
	if wait == 0 {
		wait = 120 * time.Second
	}
	deadline := time.Now().Add(wait)
	done := map[string]ExecutionStatus{}
	var out StatusResult
	for {
		out.Polls++
		for _, id := range in.ExecutionIDs {
			if st, ok := done[id]; ok && st.Status == "completed" {
				continue
			}
			st, err := s.client.BulkStatus(ctx, in.IntegrationID, id, true, maxErrors)
			if err != nil {
				return StatusResult{}, err
			}
			done[id] = executionStatus(st)
		}
		out.Executions, out.Totals, out.AllCompleted = nil, Totals{}, true
		for _, id := range in.ExecutionIDs {
			st := done[id]
			out.Executions = append(out.Executions, st)
			out.Totals.Input += st.InputCount
			out.Totals.Success += st.SuccessCount
			out.Totals.Errors += st.ErrorCount
			out.Totals.Skipped += st.SkipCount
			out.AllCompleted = out.AllCompleted && st.Status == "completed"
		}
		if !in.Wait || out.AllCompleted {
			return out, nil
		}
		processed := out.Totals.Success + out.Totals.Errors + out.Totals.Skipped
		tools.Progress(ctx, float64(processed), float64(out.Totals.Input),
			fmt.Sprintf("%d of %d rows processed, %d errors", processed, out.Totals.Input, out.Totals.Errors))
		pause := s.pollInterval(len(in.ExecutionIDs))
		if time.Now().Add(pause).After(deadline) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-time.After(pause):
		}
	}
}

// pollInterval paces waiting so that polling spends at most a fifth of the
// connection's budget: n executions polled every interval.
func (s *service) pollInterval(n int) time.Duration {
	pause := s.opts.PollInterval
	if b := s.opts.Budget; b != nil {
		cfg := b.Config()
		if share := cfg.Window * time.Duration(5*n) / time.Duration(cfg.Limit); share > pause {
			pause = share
		}
		if st := b.Status(); st.Remaining < cfg.Limit/5 {
			pause *= 2
		}
	}
	return pause
}

func executionStatus(st *ws.BulkStatus) ExecutionStatus {
	out := ExecutionStatus{
		ExecutionID: st.ExecutionID, Status: st.Status, InputCount: st.InputCount, SuccessCount: st.SuccessCount,
		ErrorCount: st.ErrorCount, SkipCount: st.SkipCount, StartedAt: st.StartedAt, CompletedAt: st.CompletedAt,
	}
	for _, e := range st.Errors {
		re := RowError{ID: e.ID, Message: e.Message}
		if e.DataRow != nil {
			if b, err := json.Marshal(e.DataRow); err == nil {
				re.DataRow = string(b)
			}
		}
		out.Errors = append(out.Errors, re)
	}
	return out
}
