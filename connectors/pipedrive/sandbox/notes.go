package sandbox

import (
	"html"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Notes, API v1 only (v2 has none): GET /v1/notes pages with start and
// limit and says whether more follow in additional_data.pagination; POST
// /v1/notes attaches a note to a deal, an organization and/or a person.
//
// Where the spec says less than the API does:
//   - A note on a deal is on the deal's organization and person too (unless
//     the body names others), so that it shows among theirs, as the
//     sandbox's activities do.
//   - Content is sanitized: script and style elements and event handler
//     attributes are removed.
//   - Without sort, notes come in id order.
//   - The sandbox has no leads, projects or tasks: a note cannot be attached
//     to one, and filtering by one finds nothing.
//   - A deal's notes are also in deal.Notes, which the deal search reads.

type note struct {
	ID       int
	UserID   int
	DealID   *int
	OrgID    *int
	PersonID *int
	Content  string
	// Pinned on the deal, the organization, the person.
	PinnedDeal, PinnedOrg, PinnedPerson bool
	Active                              bool
	AddTime, UpdateTime                 time.Time
}

var (
	tagRe     = regexp.MustCompile(`<[^>]*>`)
	scriptRe  = regexp.MustCompile(`(?is)<(script|style)\b[^>]*>.*?</(script|style)\s*>`)
	handlerRe = regexp.MustCompile(`(?i)\s+on[a-z]+\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
)

// sanitize removes what Pipedrive does not keep of a note's HTML.
func sanitize(content string) string {
	return strings.TrimSpace(handlerRe.ReplaceAllString(scriptRe.ReplaceAllString(content, ""), ""))
}

// plainText is the note's content as the search reads it: no markup.
func (n *note) plainText() string {
	return strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(n.Content, " "))), " ")
}

type titleJSON struct {
	Title string `json:"title"`
}

type nameJSON struct {
	Name string `json:"name"`
}

type noteUserJSON struct {
	Email   string  `json:"email"`
	IconURL *string `json:"icon_url"`
	IsYou   bool    `json:"is_you"`
	Name    string  `json:"name"`
}

type noteJSON struct {
	ID                       int          `json:"id"`
	UserID                   int          `json:"user_id"`
	DealID                   *int         `json:"deal_id"`
	PersonID                 *int         `json:"person_id"`
	OrgID                    *int         `json:"org_id"`
	LeadID                   *string      `json:"lead_id"`
	ProjectID                *int         `json:"project_id"`
	TaskID                   *int         `json:"task_id"`
	Content                  string       `json:"content"`
	AddTime                  string       `json:"add_time"`
	UpdateTime               string       `json:"update_time"`
	ActiveFlag               bool         `json:"active_flag"`
	PinnedToLeadFlag         bool         `json:"pinned_to_lead_flag"`
	PinnedToDealFlag         bool         `json:"pinned_to_deal_flag"`
	PinnedToOrganizationFlag bool         `json:"pinned_to_organization_flag"`
	PinnedToPersonFlag       bool         `json:"pinned_to_person_flag"`
	PinnedToProjectFlag      bool         `json:"pinned_to_project_flag"`
	PinnedToTaskFlag         bool         `json:"pinned_to_task_flag"`
	LastUpdateUserID         *int         `json:"last_update_user_id"`
	Organization             *nameJSON    `json:"organization"`
	Person                   *nameJSON    `json:"person"`
	Deal                     *titleJSON   `json:"deal"`
	Project                  *titleJSON   `json:"project"`
	Task                     *titleJSON   `json:"task"`
	User                     noteUserJSON `json:"user"`
}

func (s *Server) noteJSON(n *note) noteJSON {
	u := s.users[n.UserID-1]
	out := noteJSON{
		ID: n.ID, UserID: n.UserID, DealID: n.DealID, PersonID: n.PersonID, OrgID: n.OrgID, Content: n.Content,
		AddTime: n.AddTime.UTC().Format(v1TimeLayout), UpdateTime: n.UpdateTime.UTC().Format(v1TimeLayout), ActiveFlag: n.Active,
		PinnedToDealFlag: n.PinnedDeal, PinnedToOrganizationFlag: n.PinnedOrg, PinnedToPersonFlag: n.PinnedPerson,
		User: noteUserJSON{Email: u.Email, IsYou: u.ID == s.meID, Name: u.Name},
	}
	if n.DealID != nil {
		out.Deal = &titleJSON{s.deals[*n.DealID].Title}
	}
	if n.OrgID != nil {
		out.Organization = &nameJSON{s.orgs[*n.OrgID].Name}
	}
	if n.PersonID != nil {
		out.Person = &nameJSON{s.persons[*n.PersonID].name()}
	}
	return out
}

// v1 list envelope

type v1ListResponse struct {
	Success        bool         `json:"success"`
	Data           any          `json:"data"`
	AdditionalData v1Additional `json:"additional_data"`
}

type v1Additional struct {
	Pagination v1Pagination `json:"pagination"`
}

type v1Pagination struct {
	Start                 int  `json:"start"`
	Limit                 int  `json:"limit"`
	MoreItemsInCollection bool `json:"more_items_in_collection"`
	NextStart             *int `json:"next_start,omitempty"`
}

// noteSortFields are the fields GET /v1/notes sorts by.
var noteSortFields = map[string]func(*note) string{
	"id":          func(n *note) string { return idKey(n.ID) },
	"user_id":     func(n *note) string { return idKey(n.UserID) },
	"deal_id":     func(n *note) string { return optKey(n.DealID) },
	"person_id":   func(n *note) string { return optKey(n.PersonID) },
	"org_id":      func(n *note) string { return optKey(n.OrgID) },
	"content":     func(n *note) string { return lower(n.Content) },
	"add_time":    func(n *note) string { return ts(n.AddTime) },
	"update_time": func(n *note) string { return ts(n.UpdateTime) },
}

func optKey(id *int) string {
	if id == nil {
		return ""
	}
	return idKey(*id)
}

type sortKey struct {
	key  func(*note) string
	desc bool
}

// parseSort reads "field_1 ASC, field_2 DESC" (direction optional, ASC by
// default, any case).
func parseSort(raw string) ([]sortKey, *apiError) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var out []sortKey
	for _, part := range strings.Split(raw, ",") {
		words := strings.Fields(part)
		if len(words) == 0 || len(words) > 2 {
			return nil, badRequest("The parameter 'sort' must be field names with an optional ASC or DESC, separated by commas")
		}
		key, ok := noteSortFields[words[0]]
		if !ok {
			return nil, badRequest("The parameter 'sort' can sort by: id, user_id, deal_id, person_id, org_id, content, add_time, update_time")
		}
		k := sortKey{key: key}
		if len(words) == 2 {
			switch strings.ToUpper(words[1]) {
			case "ASC":
			case "DESC":
				k.desc = true
			default:
				return nil, badRequest("The parameter 'sort' must be field names with an optional ASC or DESC, separated by commas")
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// GET /v1/notes
func (s *Server) listNotes(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	start, hasStart, err := q.intParam("start")
	if err != nil {
		return nil, err
	}
	if hasStart && start < 0 {
		return nil, badRequest("The parameter 'start' must not be negative")
	}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	order, err := parseSort(q.v.Get("sort"))
	if err != nil {
		return nil, err
	}
	type filter struct {
		get  func(*note) *int
		want int
	}
	var filters []filter
	for _, f := range []struct {
		name string
		get  func(*note) *int
	}{
		{"user_id", func(n *note) *int { return &n.UserID }},
		{"deal_id", func(n *note) *int { return n.DealID }},
		{"person_id", func(n *note) *int { return n.PersonID }},
		{"org_id", func(n *note) *int { return n.OrgID }},
		{"project_id", func(*note) *int { return nil }},
		{"task_id", func(*note) *int { return nil }},
	} {
		n, given, ferr := q.intParam(f.name)
		if ferr != nil {
			return nil, ferr
		}
		if given {
			filters = append(filters, filter{f.get, n})
		}
	}
	type flagFilter struct {
		get  func(*note) bool
		want bool
	}
	var flags []flagFilter
	for _, f := range []struct {
		name string
		get  func(*note) bool
	}{
		{"pinned_to_deal_flag", func(n *note) bool { return n.PinnedDeal }},
		{"pinned_to_organization_flag", func(n *note) bool { return n.PinnedOrg }},
		{"pinned_to_person_flag", func(n *note) bool { return n.PinnedPerson }},
		{"pinned_to_lead_flag", func(*note) bool { return false }},
		{"pinned_to_project_flag", func(*note) bool { return false }},
		{"pinned_to_task_flag", func(*note) bool { return false }},
	} {
		switch q.v.Get(f.name) {
		case "":
		case "0":
			flags = append(flags, flagFilter{f.get, false})
		case "1":
			flags = append(flags, flagFilter{f.get, true})
		default:
			return nil, badRequest("The parameter '%s' must be 0 or 1", f.name)
		}
	}
	from, err := dateParam(q, "start_date")
	if err != nil {
		return nil, err
	}
	until, err := dateParam(q, "end_date")
	if err != nil {
		return nil, err
	}
	since, err := q.timeParam("updated_since")
	if err != nil {
		return nil, err
	}
	leadFilter := q.v.Get("lead_id") != "" // the sandbox has no leads

	var found []*note
next:
	for _, n := range s.notes {
		if !n.Active || leadFilter || since != nil && n.UpdateTime.Before(*since) {
			continue
		}
		day := n.AddTime.UTC().Format(dateLayout)
		if from != "" && day < from || until != "" && day > until {
			continue
		}
		for _, f := range filters {
			if v := f.get(n); v == nil || *v != f.want {
				continue next
			}
		}
		for _, f := range flags {
			if f.get(n) != f.want {
				continue next
			}
		}
		found = append(found, n)
	}
	sort.Slice(found, func(i, j int) bool {
		for _, k := range order {
			a, b := k.key(found[i]), k.key(found[j])
			if a != b {
				return a < b != k.desc
			}
		}
		return found[i].ID < found[j].ID
	})
	data := []noteJSON{}
	for i := start; i < len(found) && i < start+limit; i++ {
		data = append(data, s.noteJSON(found[i]))
	}
	pg := v1Pagination{Start: start, Limit: limit, MoreItemsInCollection: start+limit < len(found)}
	if pg.MoreItemsInCollection {
		pg.NextStart = ptr(start + limit)
	}
	return v1ListResponse{Success: true, Data: data, AdditionalData: v1Additional{pg}}, nil
}

// dateParam reads an optional YYYY-MM-DD query parameter.
func dateParam(q query, name string) (string, *apiError) {
	raw := q.v.Get(name)
	if raw == "" {
		return "", nil
	}
	if _, err := time.Parse(dateLayout, raw); err != nil {
		return "", badRequest("The parameter '%s' must be a date in the format YYYY-MM-DD", name)
	}
	return raw, nil
}

// POST /v1/notes
func (s *Server) addNote(r *http.Request) (any, *apiError) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	content, err := b.str("content")
	if err != nil {
		return nil, err
	}
	if content == nil {
		return nil, badRequest("The field 'content' is required")
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	n := &note{UserID: s.meID, Content: sanitize(*content), Active: true, AddTime: now, UpdateTime: now}
	if n.Content == "" {
		return nil, badRequest("The field 'content' must not be empty")
	}
	if lead, err := b.str("lead_id"); err != nil {
		return nil, err
	} else if lead != nil {
		return nil, badRequest("Lead with id %s does not exist", *lead)
	}
	for _, f := range []string{"project_id", "task_id"} {
		if id, err := b.integer(f); err != nil {
			return nil, err
		} else if id != nil {
			what := map[string]string{"project_id": "Project", "task_id": "Task"}[f]
			return nil, badRequest("%s with id %d does not exist", what, *id)
		}
	}
	var d *deal
	if id, err := b.integer("deal_id"); err != nil {
		return nil, err
	} else if id != nil {
		if d = s.deals[*id]; d == nil {
			return nil, badRequest("Deal with id %d does not exist", *id)
		}
		n.DealID, n.OrgID, n.PersonID = ptr(d.ID), d.OrgID, d.PersonID
	}
	if id, err := b.integer("org_id"); err != nil {
		return nil, err
	} else if id != nil {
		if s.orgs[*id] == nil {
			return nil, badRequest("Organization with id %d does not exist", *id)
		}
		n.OrgID = ptr(*id)
	}
	if id, err := b.integer("person_id"); err != nil {
		return nil, err
	} else if id != nil {
		if s.persons[*id] == nil {
			return nil, badRequest("Person with id %d does not exist", *id)
		}
		n.PersonID = ptr(*id)
	}
	if n.DealID == nil && n.OrgID == nil && n.PersonID == nil {
		return nil, badRequest("One of the fields 'deal_id', 'person_id', 'org_id', 'lead_id', 'project_id' or 'task_id' is required")
	}
	if id, err := b.integer("user_id"); err != nil {
		return nil, err
	} else if id != nil {
		if *id < 1 || *id > len(s.users) {
			return nil, badRequest("User with id %d does not exist", *id)
		}
		n.UserID = *id
	}
	if at, err := b.timeField("add_time"); err != nil {
		return nil, err
	} else if at != nil {
		n.AddTime = *at
	}
	// A pin needs its record's id in the body (the spec: "`deal_id` is
	// also required"), not one the note takes from its deal.
	for _, f := range []struct {
		flag, id string
		target   *bool
	}{
		{"pinned_to_deal_flag", "deal_id", &n.PinnedDeal},
		{"pinned_to_organization_flag", "org_id", &n.PinnedOrg},
		{"pinned_to_person_flag", "person_id", &n.PinnedPerson},
		{"pinned_to_lead_flag", "lead_id", new(bool)},
		{"pinned_to_project_flag", "project_id", new(bool)},
		{"pinned_to_task_flag", "task_id", new(bool)},
	} {
		v, err := b.integer(f.flag)
		if err != nil {
			return nil, err
		}
		if v == nil || *v == 0 {
			continue
		}
		if *v != 1 {
			return nil, badRequest("The field '%s' must be 0 or 1", f.flag)
		}
		if given, null := b.present(f.id); !given || null {
			return nil, badRequest("The field '%s' needs '%s'", f.flag, f.id)
		}
		*f.target = true
	}
	n.ID = nextID(s.notes)
	s.notes[n.ID] = n
	if d != nil {
		d.Notes = append(d.Notes, n.plainText())
	}
	return single(s.noteJSON(n))
}

var (
	personNotes = []string{
		"Prefers Teams calls to email; mornings work best.",
		"Met at Microsoft Ignite; keen on Copilot for the sales team.",
		"Signs off Azure spend above 50k.",
		"Champion for the migration internally.",
		"Asked for references in the same industry.",
	}
	orgNotes = []string{
		"Enterprise Agreement renews in June; MACC under discussion.",
		"Buys through a CSP reseller today.",
		"Existing Azure customer; wants to consolidate tenants.",
		"Microsoft account team: enterprise commercial, west region.",
		"Security questionnaire required before any pilot.",
	}
)

// seedNotes turns the seeded deals' notes into note records and adds a
// few on persons and organizations. It draws from its own generator, so
// the rest of the seed is as it was.
func (s *Server) seedNotes(seed int64, now time.Time) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e6f746573))
	between := func(a, b time.Time) time.Time {
		if !b.After(a) {
			return a
		}
		return a.Add(time.Duration(rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
	}
	var notes []*note
	for id := 1; id < s.nextDealID; id++ {
		d := s.deals[id]
		for _, text := range d.Notes {
			added := between(d.AddTime, d.UpdateTime)
			notes = append(notes, &note{UserID: d.OwnerID, DealID: ptr(d.ID), OrgID: d.OrgID, PersonID: d.PersonID,
				Content: text, PinnedDeal: rng.IntN(5) == 0, Active: true, AddTime: added, UpdateTime: added})
		}
	}
	for i := 0; i < 20; i++ {
		p := s.persons[1+rng.IntN(len(s.persons))]
		added := between(p.AddTime, now)
		notes = append(notes, &note{UserID: p.OwnerID, PersonID: ptr(p.ID),
			Content: personNotes[rng.IntN(len(personNotes))], Active: true, AddTime: added, UpdateTime: added})
	}
	for i := 0; i < 15; i++ {
		o := s.orgs[1+rng.IntN(len(s.orgs))]
		added := between(o.AddTime, now)
		notes = append(notes, &note{UserID: o.OwnerID, OrgID: ptr(o.ID), Content: orgNotes[rng.IntN(len(orgNotes))],
			PinnedOrg: rng.IntN(3) == 0, Active: true, AddTime: added, UpdateTime: added})
	}
	sort.SliceStable(notes, func(i, j int) bool { return notes[i].AddTime.Before(notes[j].AddTime) })
	s.notes = map[int]*note{}
	for i, n := range notes {
		n.ID = i + 1
		s.notes[n.ID] = n
	}
}
