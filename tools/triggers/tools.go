package triggers

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Toolset is the toolset of the trigger tools.
const Toolset = "triggers"

// TriggerArgs names a trigger by its resource URI.
type TriggerArgs struct {
	URI string `json:"uri" jsonschema:"minLength=1" jsonschema_description:"Trigger resource URI, e.g. pipedrive://triggers/new-deals (see trigger_list)."`
}

// ReadArgs are the arguments of trigger_read_events.
type ReadArgs struct {
	URI      string `json:"uri" jsonschema:"minLength=1"`
	After    int64  `json:"after,omitempty" jsonschema:"minimum=0" jsonschema_description:"Return events after this sequence (the cursor of the previous read)."`
	Consumer string `json:"consumer,omitempty" jsonschema_description:"Instead of after: a name whose cursor the server keeps; each event is returned once per name."`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100"`
	Raw      bool   `json:"raw,omitempty" jsonschema_description:"Also return each event's upstream record as received."`
}

// ListArgs are the arguments of trigger_list.
type ListArgs struct {
	Schemas bool `json:"schemas,omitempty" jsonschema_description:"Also return each kind's event data JSON schema."`
}

// KindView describes a trigger kind.
type KindView struct {
	URITemplate string `json:"uri_template"`
	Title       string `json:"title"`
	Source      string `json:"source" jsonschema:"enum=poll,enum=webhook"`
	// SchemaURI is the resource that publishes the schema of the events' data.
	SchemaURI string `json:"schema_uri,omitempty"`
	// Schema is that schema, when asked for.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// ActiveView describes a running trigger.
type ActiveView struct {
	URI         string `json:"uri"`
	Kind        string `json:"kind"`
	LatestSeq   int64  `json:"latest_seq"`
	Subscribers int    `json:"subscribers"`
}

// ListResult is the result of trigger_list.
type ListResult struct {
	Kinds  []KindView   `json:"kinds"`
	Active []ActiveView `json:"active"`
}

// Started is the result of trigger_start and trigger_stop.
type Started struct {
	URI    string `json:"uri"`
	Active bool   `json:"active"`
}

// Tools returns the trigger tools, for clients without resource support.
func Tools(m *triggers.Manager, r *Resources) []tools.Tool {
	return []tools.Tool{
		tools.New(tools.Spec{
			Name: "trigger_list", Title: "List triggers", Toolset: Toolset, Operation: "ListTriggers", ReadOnly: true, Idempotent: true, Local: true,
			Description: "List trigger kinds (URI templates) and active triggers with their newest sequence. Costs no budget.",
		}, func(ctx context.Context, in ListArgs) (ListResult, error) {
			out := ListResult{Kinds: []KindView{}, Active: []ActiveView{}}
			for _, k := range m.Kinds() {
				if k.Deprecated || r.access.Available(k) != nil {
					continue
				}
				src := "poll"
				if k.Webhook != nil {
					src = "webhook"
				}
				v := KindView{URITemplate: k.Template(), Title: k.Title, Source: src}
				if len(k.PayloadSchema) > 0 {
					v.SchemaURI = k.SchemaURI()
					if in.Schemas {
						v.Schema = k.PayloadSchema
					}
				}
				out.Kinds = append(out.Kinds, v)
			}
			active, err := m.Active(ctx)
			if err != nil {
				return out, err
			}
			for _, t := range active {
				seq, _ := m.Store().LatestSeq(ctx, t.URI)
				out.Active = append(out.Active, ActiveView{URI: triggers.PublicURI(t.URI), Kind: t.Kind, LatestSeq: seq, Subscribers: r.Subscribers(t.URI)})
			}
			return out, nil
		}),
		tools.New(tools.Spec{
			Name: "trigger_read_events", Title: "Read trigger events", Toolset: Toolset, Operation: "ReadTriggerEvents", ReadOnly: true, Local: true,
			Description: "Read a trigger's events after a cursor or a named consumer's cursor. Pass cursor back as after while more. Costs no budget.",
		}, func(ctx context.Context, in ReadArgs) (Page, error) {
			if err := r.check(in.URI, false); err != nil {
				return Page{}, asArgError(err)
			}
			after := in.After
			if in.Consumer != "" {
				after = -1
			}
			p, err := ReadEvents(ctx, m, in.URI, after, in.Consumer, in.Limit, in.Raw)
			return p, asArgError(err)
		}),
		tools.New(tools.Spec{
			Name: "trigger_start", Title: "Start trigger", Toolset: Toolset, Operation: "StartTrigger", Idempotent: true,
			Description: "Start a trigger by URI: a poller (from now, no history) or a WorkSpan webhook subscriber (one call). Survives restarts.",
		}, func(ctx context.Context, in TriggerArgs) (Started, error) {
			if err := r.check(in.URI, true); err != nil {
				return Started{}, asArgError(err)
			}
			key, err := m.Start(ctx, in.URI)
			if err != nil {
				return Started{}, asArgError(err)
			}
			return Started{URI: triggers.PublicURI(key), Active: true}, nil
		}),
		tools.New(tools.Spec{
			Name: "trigger_stop", Title: "Stop trigger", Toolset: Toolset, Operation: "StopTrigger", Idempotent: true, Destructive: true,
			Description: "Stop a trigger (a webhook one deletes its subscriber: one call). Stored events stay readable.",
		}, func(ctx context.Context, in TriggerArgs) (Started, error) {
			if err := r.check(in.URI, true); err != nil {
				return Started{}, asArgError(err)
			}
			if err := m.Stop(ctx, in.URI); err != nil {
				return Started{}, asArgError(err)
			}
			_, _, uri, _ := m.Resolve(in.URI)
			return Started{URI: uri, Active: false}, nil
		}),
	}
}

// asArgError reports a URI no trigger accepts as invalid_argument, and the
// refusals a caller can act on with their code.
func asArgError(err error) error {
	switch {
	case errors.Is(err, triggers.ErrUnknownTrigger):
		return tools.InvalidArgument("uri", "%v; see trigger_list for the URI templates", err)
	case errors.Is(err, triggers.ErrNeedsStateKey):
		return &tools.Error{Code: tools.CodeForbidden, Message: err.Error()}
	case errors.Is(err, triggers.ErrTooManyTriggers):
		return &tools.Error{Code: tools.CodeConflict, Message: err.Error()}
	case errors.Is(err, triggers.ErrCallbackUnreachable):
		return &tools.Error{Code: tools.CodeUnavailable, Message: err.Error()}
	}
	return err
}
