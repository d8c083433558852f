package workspan

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// IntegrationsArgs are the arguments of workspan_list_integrations.
type IntegrationsArgs struct {
	IntegrationID string `json:"integration_id,omitempty" jsonschema_description:"Only this one."`
}

// Column is a field a bulk load row may set, from the integration's object
// schema.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Format   string `json:"format,omitempty"`
	Pattern  string `json:"pattern,omitempty"`
	Required bool   `json:"required,omitempty"`
	// Values are the allowed values (e.g. the stage names).
	Values      []string `json:"values,omitempty"`
	Description string   `json:"description,omitempty"`
}

// IntegrationInfo is one integration with the columns its bulk loads take.
type IntegrationInfo struct {
	IntegrationID string `json:"integration_id"`
	Name          string `json:"name"`
	Type          string `json:"type,omitempty"`
	Description   string `json:"description,omitempty"`
	// ObjectType is the kind of object it holds, e.g. opportunity.
	ObjectType string `json:"object_type,omitempty"`
	// Columns: required ones first, then in the schema's order.
	Columns []Column `json:"columns,omitempty"`
	// NoColumns says why Columns is missing.
	NoColumns string `json:"no_columns,omitempty"`
}

// IntegrationList is the result of workspan_list_integrations.
type IntegrationList struct {
	Integrations []IntegrationInfo `json:"integrations"`
	// Layout is how a bulk load lays out its rows.
	Layout string `json:"layout"`
	// Sources says where each part comes from.
	Sources string `json:"sources"`
	Next    string `json:"next,omitempty"`
}

// Bounds of workspan_list_integrations and of the integrations named in
// errors.
const (
	// catalogTTL is how long the integrations and their schemas are
	// reused.
	catalogTTL = 10 * time.Minute
	// maxDescribed is how many integrations one call reads the schema
	// of; integration_id reaches the others.
	maxDescribed = 20
	// maxValues bounds a column's allowed values.
	maxValues = 50
	// maxDescription bounds a column's description, in bytes.
	maxDescription = 160
	// maxNamed is how many valid integrations an error names.
	maxNamed = 20
)

// integrationSources says where each part of the result comes from: the
// WorkSpan API, or only the connector definition.
const integrationSources = "integrations: WorkSpan GET /event/v1/metadata/integration; object_type and columns: " +
	"each one's object schema, GET /event/v1/metadata/integration/{id} (fields WorkSpan sets, marked readOnly, left out); " +
	"layout: the connector definition (BulkloadData)."

// catalog keeps the integrations and their object schemas for catalogTTL,
// so that workspan_list_integrations and the errors that name the valid
// integrations cost at most one call each while it is fresh.
type catalog struct {
	mu      sync.Mutex
	listAt  time.Time
	list    []ws.Integration
	schemas map[string]schemaEntry
}

type schemaEntry struct {
	at     time.Time
	schema *ws.ObjectSchema
}

// integrations returns the integrations, from the catalog while it is
// fresh, else from WorkSpan.
func (s *service) integrations(ctx context.Context) ([]ws.Integration, error) {
	now := s.opts.Clock.Now()
	s.cat.mu.Lock()
	if s.cat.list != nil && now.Sub(s.cat.listAt) < catalogTTL {
		list := s.cat.list
		s.cat.mu.Unlock()
		return list, nil
	}
	s.cat.mu.Unlock()
	list, err := s.client.Integrations(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []ws.Integration{}
	}
	s.cat.mu.Lock()
	s.cat.list, s.cat.listAt = list, now
	s.cat.mu.Unlock()
	return list, nil
}

// objectSchema returns an integration's object schema, from the catalog
// while it is fresh, else from WorkSpan.
func (s *service) objectSchema(ctx context.Context, integrationID string) (*ws.ObjectSchema, error) {
	now := s.opts.Clock.Now()
	s.cat.mu.Lock()
	if e, ok := s.cat.schemas[integrationID]; ok && now.Sub(e.at) < catalogTTL {
		s.cat.mu.Unlock()
		return e.schema, nil
	}
	s.cat.mu.Unlock()
	sc, err := s.client.ObjectSchema(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	s.cat.mu.Lock()
	if s.cat.schemas == nil {
		s.cat.schemas = map[string]schemaEntry{}
	}
	s.cat.schemas[integrationID] = schemaEntry{at: now, schema: sc}
	s.cat.mu.Unlock()
	return sc, nil
}

func (s *service) listIntegrations(ctx context.Context, in IntegrationsArgs) (IntegrationList, error) {
	list, err := s.integrations(ctx)
	if err != nil {
		return IntegrationList{}, err
	}
	if id := strings.TrimSpace(in.IntegrationID); id != "" {
		i := slices.IndexFunc(list, func(x ws.Integration) bool { return x.IntegrationID == id })
		if i < 0 {
			return IntegrationList{}, &tools.Error{Code: tools.CodeNotFound, Field: "integration_id", Message: unknownIntegration(id, list)}
		}
		list = list[i : i+1]
	}
	out := IntegrationList{Integrations: []IntegrationInfo{}, Layout: ws.BulkInputs()["BulkloadData"].Layout, Sources: integrationSources}
	for n, it := range list {
		info := IntegrationInfo{IntegrationID: it.IntegrationID, Name: it.Name, Type: it.IntegrationType, Description: it.Description}
		if n >= maxDescribed {
			out.Next = fmt.Sprintf("Columns are given for the first %d integrations: pass integration_id for another's.", maxDescribed)
			out.Integrations = append(out.Integrations, info)
			continue
		}
		sc, err := s.objectSchema(ctx, it.IntegrationID)
		switch {
		case err == nil:
			info.ObjectType, info.Columns = columnsOf(sc)
			if len(info.Columns) == 0 {
				info.NoColumns = "its object schema names no field a load sets"
			}
		case refusal(err) != nil:
			info.NoColumns = "WorkSpan gives no object schema for it: " + tools.AsError(err).Message
		default:
			return IntegrationList{}, err
		}
		out.Integrations = append(out.Integrations, info)
	}
	return out, nil
}

// columnsOf turns an object schema into the object type (the values of
// its object_type field) and the columns a load sets: every field but
// object_type and the readOnly ones, required first.
func columnsOf(sc *ws.ObjectSchema) (objectType string, cols []Column) {
	for _, f := range sc.Fields {
		if f.Name == "object_type" {
			objectType = strings.Join(f.Enum, ", ")
			continue
		}
		if f.ReadOnly {
			continue
		}
		c := Column{Name: f.Name, Type: f.Type, Format: f.Format, Pattern: f.Pattern, Required: f.Required, Values: f.Enum,
			Description: clip(f.Description, maxDescription)}
		if len(c.Values) > maxValues {
			c.Description = clip(fmt.Sprintf("%s (first %d of %d values)", c.Description, maxValues, len(c.Values)), maxDescription+40)
			c.Values = c.Values[:maxValues]
		}
		cols = append(cols, c)
	}
	slices.SortStableFunc(cols, func(a, b Column) int {
		switch {
		case a.Required == b.Required:
			return 0
		case a.Required:
			return -1
		}
		return 1
	})
	return objectType, cols
}

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// unknownIntegration says that id is not an integration and names the
// valid ones.
func unknownIntegration(id string, list []ws.Integration) string {
	msg := fmt.Sprintf("integration_id %s is not a WorkSpan integration. ", quote(id))
	if len(list) == 0 {
		return msg + "WorkSpan has no integration configured: set one up in WorkSpan first."
	}
	var b strings.Builder
	for i, it := range list {
		if i == maxNamed {
			fmt.Fprintf(&b, ", … and %d more", len(list)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it.IntegrationID)
		if it.Name != "" || it.IntegrationType != "" {
			b.WriteString(" (" + strings.Trim(it.Name+", "+it.IntegrationType, ", ") + ")")
		}
	}
	return msg + "Valid: " + b.String() + ". workspan_list_integrations gives each one's columns."
}

// quote quotes a caller's value for a message, short and escaped.
func quote(s string) string {
	if len(s) > 80 {
		s = clip(s, 80)
	}
	return fmt.Sprintf("%q", s)
}

// refusal returns the upstream error when err is WorkSpan refusing a
// request as bad or naming something unknown (400, 404); nil otherwise.
func refusal(err error) *upstream.Error {
	var ue *upstream.Error
	if errors.As(err, &ue) && (ue.Status == http.StatusBadRequest || ue.Status == http.StatusNotFound) {
		return ue
	}
	return nil
}

// unknownIntegrationError explains WorkSpan's refusal (400, 404) of a
// call that names integrationID when that integration does not exist: the
// error says so and names the valid ones (from the catalog: at most one
// more call). When the integrations cannot be read, it is the refusal
// pointing to workspan_list_integrations. nil when err is no refusal or
// the integration exists (the refusal is about something else).
func (s *service) unknownIntegrationError(ctx context.Context, err error, integrationID string) *tools.Error {
	ue := refusal(err)
	if ue == nil || integrationID == "" {
		return nil
	}
	list, lerr := s.integrations(ctx)
	if lerr != nil {
		te := *tools.AsError(err)
		te.Message += "; workspan_list_integrations lists the valid integration ids"
		return &te
	}
	if slices.ContainsFunc(list, func(x ws.Integration) bool { return x.IntegrationID == integrationID }) {
		return nil
	}
	return &tools.Error{Code: tools.AsError(err).Code, Field: "integration_id",
		Message: unknownIntegration(integrationID, list) + " (WorkSpan: " + upstreamText(ue) + ")"}
}

// upstreamText is WorkSpan's own text of a refusal.
func upstreamText(ue *upstream.Error) string {
	msg := ue.Message
	if msg == "" {
		msg = http.StatusText(ue.Status)
	}
	return fmt.Sprintf("HTTP %d %s", ue.Status, msg)
}
