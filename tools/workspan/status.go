package workspan

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// StatusArgs are the arguments of workspan_get_bulk_load_status.
type StatusArgs struct {
	IntegrationID string   `json:"integration_id" jsonschema:"minLength=1"`
	ExecutionIDs  []string `json:"execution_ids" jsonschema:"minItems=1,maxItems=50" jsonschema_description:"Execution ids from a bulk load."`
	MaxErrors     int      `json:"max_errors,omitempty" jsonschema:"minimum=0,maximum=100" jsonschema_description:"Row errors to return per execution, default 5."`
	Wait          bool     `json:"wait,omitempty" jsonschema_description:"Poll on a backoff until every execution completes (or wait_seconds pass)."`
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
	// Next says how to go on when a wait ended before every execution completed.
	Next string `json:"next,omitempty"`
}

// Totals adds up the executions.
type Totals struct {
	Input   int `json:"input"`
	Success int `json:"success"`
	Errors  int `json:"errors"`
	Skipped int `json:"skipped"`
}

// MaxPollPause caps the pause between two status polls while waiting.
const MaxPollPause = 5 * time.Minute

// bulkStatus reads the executions' status; with wait, it polls until they
// all complete or the wait ends. Polls follow the jobs' age: after a poll at
// which the oldest running execution is A old, the next comes A later
// (between the floor of pollFloor and MaxPollPause), so a job that runs for T
// costs about log2(T/floor) polls up to MaxPollPause, then one per
// MaxPollPause — however many calls the wait is split into. The last poll is
// made at the deadline, and a result that is still running says how to go on.
func (s *service) bulkStatus(ctx context.Context, in StatusArgs) (StatusResult, error) {
	maxErrors := in.MaxErrors
	if maxErrors == 0 {
		maxErrors = 5
	}
	wait := time.Duration(in.WaitSeconds) * time.Second
	if wait == 0 {
		wait = 120 * time.Second
	}
	clk := s.opts.Clock
	deadline := clk.Now().Add(wait)
	done := map[string]ExecutionStatus{}
	var out StatusResult
	for {
		out.Polls++
		polledAt := clk.Now()
		for _, id := range in.ExecutionIDs {
			if st, ok := done[id]; ok && st.Status == "completed" {
				continue
			}
			st, err := s.client.BulkStatus(ctx, in.IntegrationID, id, true, maxErrors)
			if err != nil {
				if te := s.unknownIntegrationError(ctx, err, in.IntegrationID); te != nil {
					return StatusResult{}, te
				}
				return StatusResult{}, tools.NamedNotFound(err, "execution_ids", fmt.Sprintf("execution %s of integration %s", quote(id), quote(in.IntegrationID)),
					"Execution ids come from a bulk load into that same integration (its executions[].execution_id).")
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
		now := clk.Now()
		if !now.Before(deadline) {
			break
		}
		processed := out.Totals.Success + out.Totals.Errors + out.Totals.Skipped
		tools.Progress(ctx, float64(processed), float64(out.Totals.Input),
			fmt.Sprintf("%d of %d rows processed, %d errors", processed, out.Totals.Input, out.Totals.Errors))
		pause := s.nextPause(out.Executions, polledAt, len(in.ExecutionIDs))
		if clock.Sleep(ctx, clk, min(pause, deadline.Sub(now))) != nil {
			break
		}
	}
	out.Next = fmt.Sprintf("Still running after %s: call workspan_get_bulk_load_status again with the same integration_id and execution_ids and wait: true to keep waiting (polls slow down as the job ages, to spare the budget).",
		wait.Round(time.Second))
	return out, nil
}

// nextPause is the pause after a poll made at polledAt: the age of the
// oldest running execution (its started_at, or the poll time when the
// upstream gives none), between pollFloor and MaxPollPause.
func (s *service) nextPause(execs []ExecutionStatus, polledAt time.Time, n int) time.Duration {
	oldest := polledAt
	for _, e := range execs {
		if e.Status == "completed" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, e.StartedAt); err == nil && t.Before(oldest) {
			oldest = t
		}
	}
	return min(max(polledAt.Sub(oldest), s.pollFloor(n)), MaxPollPause)
}

// pollFloor is the shortest pause between polls: Options.PollInterval, and
// at least what keeps polling n executions within a fifth of the
// connection's budget (twice that when the budget runs low).
func (s *service) pollFloor(n int) time.Duration {
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
