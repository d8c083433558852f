package pipedrive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// newTool defines a Pipedrive tool: tools.New, with every error of the
// handler passed through explain, so that each tool names what Pipedrive
// did not find and where valid ids come from.
func newTool[In, Out any](s *service, spec tools.Spec, fn func(context.Context, In) (Out, error)) tools.Tool {
	return tools.New(spec, func(ctx context.Context, in In) (Out, error) {
		out, err := fn(ctx, in)
		return out, s.explain(ctx, err)
	})
}

// findWith says, per kind of record, where an agent finds valid ids.
var findWith = map[string]string{
	pd.EntityDeal:         "find deals with pipedrive_search_deals or pipedrive_list_deals",
	pd.EntityStage:        "pipedrive_list_pipelines lists every pipeline's stages",
	pd.EntityPipeline:     "pipedrive_list_pipelines lists the pipelines",
	pd.EntityActivity:     "find activities with pipedrive_list_activities (by deal_id, person_id, org_id or owner_id)",
	pd.EntityPerson:       "find persons with pipedrive_search_persons",
	pd.EntityOrganization: "find organizations with pipedrive_search_organizations",
}

// argumentOf is the argument that names a record of each kind.
var argumentOf = map[string]string{
	pd.EntityDeal: "deal_id", pd.EntityStage: "stage_id", pd.EntityPipeline: "pipeline_id",
	pd.EntityActivity: "activity_id", pd.EntityPerson: "person_id", pd.EntityOrganization: "org_id",
}

// missingReference is Pipedrive's 400 to a write that links a record
// that does not exist, e.g. "Person with id 5 does not exist".
var missingReference = regexp.MustCompile(`^(Deal|Stage|Pipeline|Activity|Person|Organization|User) with id (\d+) does not exist$`)

// explain turns Pipedrive's "not found" answers into errors that name the
// record and where valid ids come from: a 404 about a record (not_found),
// and a write's reference to a record that does not exist
// (invalid_argument). Any other error is returned as it is.
func (s *service) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var nf *pd.NotFoundError
	if errors.As(err, &nf) {
		return tools.NotFound("%s %d not found; %s", nf.Entity, nf.ID, s.whereToFind(ctx, nf.Entity))
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != http.StatusBadRequest {
		return err
	}
	m := missingReference.FindStringSubmatch(ue.Message)
	if m == nil {
		return err
	}
	entity := strings.ToLower(m[1])
	id, _ := strconv.ParseInt(m[2], 10, 64)
	return tools.InvalidArgument(argumentOf[entity], "%s %d not found; %s", entity, id, s.whereToFind(ctx, entity))
}

// whereToFind says where valid ids of the kind come from. Users are
// listed from the cached reference data.
func (s *service) whereToFind(ctx context.Context, entity string) string {
	if hint, ok := findWith[entity]; ok {
		return hint
	}
	if entity == pd.EntityUser {
		_, ref := s.at(ctx)
		snap, _ := ref.get(ctx, false)
		return userList(snap)
	}
	return "check the id"
}

// userList renders the company's users for an error message.
func userList(snap snapshot) string {
	if len(snap.users) == 0 {
		return "the owner_id of a deal (pipedrive_get_deal) is a valid user id"
	}
	ids := make([]int64, 0, len(snap.users))
	for id := range snap.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d %s", id, snap.users[id])
	}
	return "users: " + strings.Join(parts, ", ")
}

// checkUser refuses a user id the reference data does not know, refreshing
// it once first, so that a wrong owner costs no write. When the users
// cannot be loaded, the id is left for Pipedrive to check.
func checkUser(ctx context.Context, ref *refData, field string, id int64) error {
	if id == 0 {
		return nil
	}
	snap, err := ref.get(ctx, false)
	if err != nil {
		return err
	}
	if _, ok := snap.users[id]; ok || len(snap.users) == 0 {
		return nil
	}
	if snap, err = ref.get(ctx, true); err != nil {
		return err
	}
	if _, ok := snap.users[id]; ok || len(snap.users) == 0 {
		return nil
	}
	return tools.InvalidArgument(field, "user %d not found; %s", id, userList(snap))
}
