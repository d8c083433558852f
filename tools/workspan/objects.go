package workspan

import (
	"context"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// ObjectArgs identifies a WorkSpan object.
type ObjectArgs struct {
	ObjectID string `json:"object_id" jsonschema:"minLength=1" jsonschema_description:"WorkSpan object id (long id)."`
}

// ExternalID is one external id of an object.
type ExternalID struct {
	FieldName  string `json:"field_name"`
	ExternalID string `json:"external_id"`
}

// ExternalIDs is the result of workspan_get_external_id.
type ExternalIDs struct {
	ObjectID    string       `json:"object_id"`
	ExternalIDs []ExternalID `json:"external_ids"`
}

func (s *service) getExternalID(ctx context.Context, in ObjectArgs) (ExternalIDs, error) {
	r, err := s.client.GetExternalID(ctx, in.ObjectID)
	if err != nil {
		return ExternalIDs{}, objectNotFound(err, in.ObjectID)
	}
	out := ExternalIDs{ObjectID: r.ObjectID, ExternalIDs: []ExternalID{}}
	for _, e := range r.ExternalIDs {
		out.ExternalIDs = append(out.ExternalIDs, ExternalID{FieldName: e.FieldName, ExternalID: e.ExternalID})
	}
	return out, nil
}

// ConnectArgs are the arguments of workspan_connect_external_id.
type ConnectArgs struct {
	ObjectID   string `json:"object_id" jsonschema:"minLength=1"`
	ExternalID string `json:"external_id" jsonschema:"minLength=1" jsonschema_description:"The CRM id, e.g. a Pipedrive deal id."`
	FieldName  string `json:"field_name,omitempty" jsonschema_description:"Field to hold it; default per object type."`
}

// Connected is the result of workspan_connect_external_id.
type Connected struct {
	ObjectID   string `json:"object_id"`
	ExternalID string `json:"external_id"`
	FieldName  string `json:"field_name,omitempty"`
}

func (s *service) connectExternalID(ctx context.Context, in ConnectArgs) (Connected, error) {
	r, err := s.client.ConnectExternalID(ctx, in.ObjectID, ws.ExternalIDInput{ExternalID: in.ExternalID, FieldName: in.FieldName})
	if err != nil {
		return Connected{}, objectNotFound(err, in.ObjectID)
	}
	return Connected{ObjectID: r.ObjectID, ExternalID: r.ExternalID, FieldName: r.FieldName}, nil
}

// AuditArgs are the arguments of workspan_add_audit.
type AuditArgs struct {
	ObjectID      string `json:"object_id" jsonschema:"minLength=1"`
	StatusCode    string `json:"status_code" jsonschema:"enum=SCHEDULED,enum=CREATE_FAILED,enum=UPDATE_FAILED,enum=LINKED"`
	Message       string `json:"message" jsonschema:"minLength=1"`
	IntegrationID string `json:"integration_id,omitempty"`
	ExternalID    string `json:"external_id,omitempty" jsonschema_description:"e.g. the Partner Center referral id."`
}

// Audited is the result of workspan_add_audit.
type Audited struct {
	ObjectID   string `json:"object_id"`
	FieldName  string `json:"field_name"`
	StatusCode string `json:"status_code"`
}

func (s *service) addAudit(ctx context.Context, in AuditArgs) (Audited, error) {
	r, err := s.client.AddAudit(ctx, in.ObjectID, ws.AuditInput{
		FieldName: ws.AuditFieldIntegrationStatus, StatusCode: in.StatusCode, Message: in.Message,
		IntegrationID: in.IntegrationID, ExternalID: in.ExternalID,
	})
	if err != nil {
		if te := s.unknownIntegrationError(ctx, err, in.IntegrationID); te != nil {
			return Audited{}, te
		}
		return Audited{}, objectNotFound(err, in.ObjectID)
	}
	return Audited{ObjectID: r.ObjectID, FieldName: r.FieldName, StatusCode: r.StatusCode}, nil
}

// objectNotFound names the object WorkSpan did not find, and where object
// ids come from.
func objectNotFound(err error, objectID string) error {
	return tools.NamedNotFound(err, "object_id", "WorkSpan object "+quote(objectID),
		"object_id is a WorkSpan long id: take it from a report row (workspan_read_report_data, e.g. its opportunity_id column).")
}
