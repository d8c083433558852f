package pipedrive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// Kinds of record a NotFoundError names.
const (
	EntityDeal         = "deal"
	EntityStage        = "stage"
	EntityPipeline     = "pipeline"
	EntityActivity     = "activity"
	EntityPerson       = "person"
	EntityOrganization = "organization"
	EntityUser         = "user"
)

// NotFoundError is Pipedrive's 404 to a request about one record (GET,
// PATCH or DELETE /api/v2/<records>/{id}): it names the record, where the
// upstream only says "Entity was not found". errors.As still finds the
// *upstream.Error (and, for a write, the *upstream.SentError) beneath it.
type NotFoundError struct {
	// Entity is the kind of record, e.g. EntityDeal.
	Entity string
	// ID is the id the request named.
	ID int64
	// Err is the upstream's reply.
	Err error
}

// Error implements error.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("pipedrive: %s %d not found", e.Entity, e.ID)
}

// Unwrap returns the upstream's reply.
func (e *NotFoundError) Unwrap() error { return e.Err }

// byID performs one request about the record id under collection (e.g.
// "/api/v2/deals"), turning a 404 into a *NotFoundError naming entity. It
// is the one way the client addresses a single record.
func (c *Client) byID(ctx context.Context, method, entity, collection string, id int64, q url.Values, body, out any) error {
	_, err := c.do(ctx, method, idPath(collection, id), q, body, out)
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
		return &NotFoundError{Entity: entity, ID: id, Err: err}
	}
	return err
}
