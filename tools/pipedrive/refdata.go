package pipedrive

import (
	"context"
	"sync"
	"time"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// refTTL is how long pipelines, stages, users and activity types are
// trusted before they are fetched again.
const refTTL = 10 * time.Minute

// maxNames bounds the person/organization name cache.
const maxNames = 10000

// refData caches Pipedrive reference data so results can carry names
// (stage, pipeline, owner, organization, person) at almost no budget: the
// lists cost one upstream call each per refTTL (on the client's clock),
// names one call per id.
type refData struct {
	client *pd.Client
	clock  clock.Clock

	mu        sync.Mutex
	loadedAt  time.Time
	pipelines []pd.Pipeline
	stages    []pd.Stage
	users     map[int64]string
	actTypes  []pd.ActivityType
	typesAt   time.Time
	fields    customFieldSet
	fieldsAt  time.Time
	orgNames  map[int64]string
	perNames  map[int64]string
	loadGuard sync.Mutex
}

func newRefData(c *pd.Client) *refData {
	return &refData{client: c, clock: c.Clock(), users: map[int64]string{}, orgNames: map[int64]string{}, perNames: map[int64]string{}}
}

// snapshot is a consistent view of pipelines and stages.
type snapshot struct {
	pipelines []pd.Pipeline
	stages    []pd.Stage
	users     map[int64]string
}

func (s snapshot) pipeline(id int64) (pd.Pipeline, bool) {
	for _, p := range s.pipelines {
		if p.ID == id {
			return p, true
		}
	}
	return pd.Pipeline{}, false
}

func (s snapshot) stage(id int64) (pd.Stage, bool) {
	for _, st := range s.stages {
		if st.ID == id {
			return st, true
		}
	}
	return pd.Stage{}, false
}

func (s snapshot) stagesOf(pipelineID int64) []pd.Stage {
	var out []pd.Stage
	for _, st := range s.stages {
		if st.PipelineID == pipelineID && !st.IsDeleted {
			out = append(out, st)
		}
	}
	return out
}

func (s snapshot) pipelineName(id int64) string {
	p, _ := s.pipeline(id)
	return p.Name
}

func (s snapshot) stageName(id int64) string {
	st, _ := s.stage(id)
	return st.Name
}

// get returns the cached pipelines, stages and users, loading them when
// stale or when force is set. Concurrent callers share one load.
func (r *refData) get(ctx context.Context, force bool) (snapshot, error) {
	r.mu.Lock()
	fresh := !r.loadedAt.IsZero() && r.clock.Now().Sub(r.loadedAt) < refTTL
	snap := snapshot{pipelines: r.pipelines, stages: r.stages, users: r.users}
	r.mu.Unlock()
	if fresh && !force {
		return snap, nil
	}
	r.loadGuard.Lock()
	defer r.loadGuard.Unlock()
	r.mu.Lock()
	if !force && !r.loadedAt.IsZero() && r.clock.Now().Sub(r.loadedAt) < refTTL {
		snap = snapshot{pipelines: r.pipelines, stages: r.stages, users: r.users}
		r.mu.Unlock()
		return snap, nil
	}
	r.mu.Unlock()

	var pipelines []pd.Pipeline
	for p, err := range r.client.Pipelines(ctx) {
		if err != nil {
			return snap, err
		}
		pipelines = append(pipelines, p)
	}
	var stages []pd.Stage
	for s, err := range r.client.Stages(ctx, 0) {
		if err != nil {
			return snap, err
		}
		stages = append(stages, s)
	}
	users := map[int64]string{}
	if us, err := r.client.Users(ctx); err == nil {
		for _, u := range us {
			users[u.ID] = u.Name
		}
	} else if len(r.users) > 0 {
		users = r.users // owner names are a nicety: keep the old ones
	}
	r.mu.Lock()
	r.pipelines, r.stages, r.users, r.loadedAt = pipelines, stages, users, r.clock.Now()
	snap = snapshot{pipelines: pipelines, stages: stages, users: users}
	r.mu.Unlock()
	return snap, nil
}

// activityTypes returns the cached activity types.
func (r *refData) activityTypes(ctx context.Context) ([]pd.ActivityType, error) {
	return cachedLoad(r, &r.actTypes, &r.typesAt, func() ([]pd.ActivityType, error) { return r.client.ActivityTypes(ctx) })
}

// customFields returns the cached deal custom fields.
func (r *refData) customFields(ctx context.Context) (customFieldSet, error) {
	return cachedLoad(r, &r.fields, &r.fieldsAt, func() (customFieldSet, error) {
		fields, err := r.client.ListDealFields(ctx)
		return newCustomFieldSet(fields), err
	})
}

// cachedLoad returns *val while it is younger than refTTL; otherwise one
// caller loads it (one upstream call) while concurrent callers wait for
// that load instead of making their own.
func cachedLoad[T any](r *refData, val *T, at *time.Time, load func() (T, error)) (T, error) {
	fresh := func() (T, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return *val, !at.IsZero() && r.clock.Now().Sub(*at) < refTTL
	}
	if v, ok := fresh(); ok {
		return v, nil
	}
	r.loadGuard.Lock()
	defer r.loadGuard.Unlock()
	if v, ok := fresh(); ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		var zero T
		return zero, err
	}
	r.mu.Lock()
	*val, *at = v, r.clock.Now()
	r.mu.Unlock()
	return v, nil
}

// rememberOrg and rememberPerson record names seen in any reply.
func (r *refData) rememberOrg(id int64, name string)    { r.remember(r.orgNames, id, name) }
func (r *refData) rememberPerson(id int64, name string) { r.remember(r.perNames, id, name) }

func (r *refData) remember(m map[int64]string, id int64, name string) {
	if id == 0 || name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m) >= maxNames {
		clear(m)
	}
	m[id] = name
}

func (r *refData) cachedOrg(id int64) string    { return r.cached(r.orgNames, id) }
func (r *refData) cachedPerson(id int64) string { return r.cached(r.perNames, id) }

func (r *refData) cached(m map[int64]string, id int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[id]
}

// orgName returns an organization's name, fetching it once if unknown.
// A failed look-up yields "" rather than failing the caller's tool.
func (r *refData) orgName(ctx context.Context, id int64) string {
	return r.name(r.orgNames, id, func() (string, error) {
		o, err := r.client.GetOrganization(ctx, id)
		if err != nil {
			return "", err
		}
		return o.Name, nil
	})
}

// personName returns a person's name, fetching it once if unknown.
func (r *refData) personName(ctx context.Context, id int64) string {
	return r.name(r.perNames, id, func() (string, error) {
		p, err := r.client.GetPerson(ctx, id)
		if err != nil {
			return "", err
		}
		return p.Name, nil
	})
}

func (r *refData) name(m map[int64]string, id int64, fetch func() (string, error)) string {
	if id == 0 {
		return ""
	}
	if n := r.cached(m, id); n != "" {
		return n
	}
	n, err := fetch()
	if err != nil {
		return ""
	}
	r.remember(m, id, n)
	return n
}

// resolveNames fetches the names of the organizations and persons among
// ids that are not cached, a hundred a call, with at most calls list
// calls. Names are a nicety: a failed call leaves them unknown.
func (r *refData) resolveNames(ctx context.Context, orgIDs, personIDs []int64, calls int) {
	orgs, persons := r.unknown(r.orgNames, orgIDs), r.unknown(r.perNames, personIDs)
	for calls > 0 && len(orgs)+len(persons) > 0 {
		if len(orgs) > 0 {
			batch := orgs[:min(len(orgs), pd.MaxIDsPerList)]
			orgs = orgs[len(batch):]
			calls--
			found, err := r.client.OrganizationsByID(ctx, batch)
			if err != nil {
				return
			}
			for _, o := range found {
				r.rememberOrg(o.ID, o.Name)
			}
		}
		if len(persons) > 0 && calls > 0 {
			batch := persons[:min(len(persons), pd.MaxIDsPerList)]
			persons = persons[len(batch):]
			calls--
			found, err := r.client.PersonsByID(ctx, batch)
			if err != nil {
				return
			}
			for _, p := range found {
				r.rememberPerson(p.ID, p.Name)
			}
		}
	}
}

// unknown returns the distinct non-zero ids that m has no name for.
func (r *refData) unknown(m map[int64]string, ids []int64) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	var out []int64
	for _, id := range ids {
		if id != 0 && !seen[id] && m[id] == "" {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
