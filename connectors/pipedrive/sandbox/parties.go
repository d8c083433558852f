package sandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Organizations and persons (contacts): list, get, search, create and
// update, as API v2 does them.
//
// Where the spec says less than the API does:
//   - POST /persons declares no required member, but a person needs a name:
//     v1's definition of the same create requires it, and so does the
//     sandbox.
//   - An email's or phone's label is one of work, home, mobile and other (the
//     labels Pipedrive offers); without one it is work. One of a list is
//     primary: the first marked so, else the first.
//   - The sandbox company has no organization or person custom fields, so a
//     custom_fields object must be empty (or null).
//   - Members of contact sync other than job_title (postal_address, notes,
//     im, birthday) and marketing_status are not kept.
//   - An address given by its value alone is not parsed into parts (the API
//     geocodes it); given by parts alone, its value is composed from them.

// GET /api/v2/persons
func (s *Server) listPersons(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, ids, err := q.listStart("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	owner, hasOwner, err := q.intParam("owner_id")
	if err != nil {
		return nil, err
	}
	org, hasOrg, err := q.intParam("org_id")
	if err != nil {
		return nil, err
	}
	dealID, hasDeal, err := q.intParam("deal_id")
	if err != nil {
		return nil, err
	}
	window, err := q.updatedWindow()
	if err != nil {
		return nil, err
	}
	var items []sortable
	for _, p := range s.persons {
		if ids != nil && !ids[p.ID] || hasOwner && p.OwnerID != owner || hasOrg && (p.OrgID == nil || *p.OrgID != org) || !window.contains(p.UpdateTime) {
			continue
		}
		if hasDeal {
			d := s.deals[dealID]
			if d == nil || d.PersonID == nil || *d.PersonID != p.ID {
				continue
			}
		}
		items = append(items, sortableEntity(p.ID, p.AddTime, p.UpdateTime, spec.sortBy, p.json()))
	}
	return listPage(items, spec)
}

// GET /api/v2/persons/{id}
func (s *Server) getPerson(_ *http.Request, id int) (any, *apiError) {
	p, found := s.persons[id]
	if !found {
		return nil, notFound()
	}
	return single(p.json())
}

// GET /api/v2/organizations
func (s *Server) listOrgs(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, ids, err := q.listStart("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	owner, hasOwner, err := q.intParam("owner_id")
	if err != nil {
		return nil, err
	}
	window, err := q.updatedWindow()
	if err != nil {
		return nil, err
	}
	var items []sortable
	for _, o := range s.orgs {
		if ids != nil && !ids[o.ID] || hasOwner && o.OwnerID != owner || !window.contains(o.UpdateTime) {
			continue
		}
		items = append(items, sortableEntity(o.ID, o.AddTime, o.UpdateTime, spec.sortBy, o.json()))
	}
	return listPage(items, spec)
}

// GET /api/v2/organizations/{id}
func (s *Server) getOrg(_ *http.Request, id int) (any, *apiError) {
	o, found := s.orgs[id]
	if !found {
		return nil, notFound()
	}
	return single(o.json())
}

// Search

// searchArgs are the parameters every v2 search of a contact record takes.
type searchArgs struct {
	term          string
	exact         bool
	fields        map[string]bool
	limit, offset int
}

// parseSearch reads term, exact_match, fields (among allowed; all of them
// when absent), limit and cursor.
func parseSearch(q query, allowed ...string) (searchArgs, *apiError) {
	term, exact, err := searchTerm(q)
	if err != nil {
		return searchArgs{}, err
	}
	fields, err := q.listParam("fields", allowed...)
	if err != nil {
		return searchArgs{}, err
	}
	if len(fields) == 0 {
		fields = allowed
	}
	limit, offset, err := q.searchPage()
	if err != nil {
		return searchArgs{}, err
	}
	a := searchArgs{term: term, exact: exact, fields: map[string]bool{}, limit: limit, offset: offset}
	for _, f := range fields {
		a.fields[f] = true
	}
	return a, nil
}

// matchNotes scores the notes attached to a record (by attached) against
// the term and returns the best score and the texts that matched.
func (s *Server) matchNotes(a searchArgs, attached func(*note) bool) (float64, []string) {
	score, matched := 0.0, []string{}
	if !a.fields["notes"] {
		return 0, matched
	}
	for _, n := range s.notes {
		if !n.Active || !attached(n) {
			continue
		}
		text := n.plainText()
		if sc := matchScore(text, a.term, a.exact); sc > 0 {
			score = max(score, sc*0.8)
			matched = append(matched, text)
		}
	}
	return score, matched
}

// GET /api/v2/organizations/search
func (s *Server) searchOrgs(r *http.Request) (any, *apiError) {
	a, err := parseSearch(query{r.URL.Query()}, "address", "custom_fields", "notes", "name")
	if err != nil {
		return nil, err
	}
	var results []searchResult
	var ids []int
	for _, o := range s.orgs {
		score := 0.0
		if a.fields["name"] {
			score = matchScore(o.Name, a.term, a.exact)
		}
		if a.fields["address"] && o.Address != nil {
			score = max(score, matchScore(o.Address.Value, a.term, a.exact)*0.7)
		}
		noteScore, notes := s.matchNotes(a, func(n *note) bool { return n.OrgID != nil && *n.OrgID == o.ID })
		score = max(score, noteScore)
		if score == 0 {
			continue
		}
		results = append(results, searchResult{ResultScore: score, Item: orgSearchItem{
			ID: o.ID, Type: "organization", Name: o.Name, Address: o.Address.formatted(), VisibleTo: o.VisibleTo,
			Owner: idRef{o.OwnerID}, CustomFields: []string{}, Notes: notes,
		}})
		ids = append(ids, o.ID)
	}
	return searchResponse(results, ids, a.limit, a.offset), nil
}

type personSearchItem struct {
	ID           int      `json:"id"`
	Type         string   `json:"type"`
	Name         string   `json:"name"`
	Phones       []string `json:"phones"`
	Emails       []string `json:"emails"`
	VisibleTo    int      `json:"visible_to"`
	Owner        idRef    `json:"owner"`
	Organization *orgRef  `json:"organization"`
	CustomFields []string `json:"custom_fields"`
	Notes        []string `json:"notes"`
}

// GET /api/v2/persons/search
func (s *Server) searchPersons(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	a, err := parseSearch(q, "custom_fields", "email", "notes", "phone", "name")
	if err != nil {
		return nil, err
	}
	orgID, hasOrg, err := q.intParam("organization_id")
	if err != nil {
		return nil, err
	}
	if _, err := q.listParam("include_fields", "person.picture"); err != nil {
		return nil, err // no person of the sandbox has a picture
	}
	var results []searchResult
	var ids []int
	for _, p := range s.persons {
		if hasOrg && (p.OrgID == nil || *p.OrgID != orgID) {
			continue
		}
		score := 0.0
		if a.fields["name"] {
			score = matchScore(p.name(), a.term, a.exact)
		}
		for _, e := range p.Emails {
			if a.fields["email"] {
				score = max(score, matchScore(e.Value, a.term, a.exact))
			}
		}
		for _, ph := range p.Phones {
			if a.fields["phone"] {
				score = max(score, phoneScore(ph.Value, a.term, a.exact))
			}
		}
		noteScore, notes := s.matchNotes(a, func(n *note) bool { return n.PersonID != nil && *n.PersonID == p.ID })
		score = max(score, noteScore)
		if score == 0 {
			continue
		}
		item := personSearchItem{ID: p.ID, Type: "person", Name: p.name(), Phones: []string{}, Emails: []string{},
			VisibleTo: p.VisibleTo, Owner: idRef{p.OwnerID}, CustomFields: []string{}, Notes: notes}
		for _, e := range p.Emails {
			item.Emails = append(item.Emails, e.Value)
		}
		for _, ph := range p.Phones {
			item.Phones = append(item.Phones, ph.Value)
		}
		if p.OrgID != nil {
			o := s.orgs[*p.OrgID]
			item.Organization = &orgRef{o.ID, o.Name, o.Address.formatted()}
		}
		results = append(results, searchResult{ResultScore: score, Item: item})
		ids = append(ids, p.ID)
	}
	return searchResponse(results, ids, a.limit, a.offset), nil
}

// phoneScore matches a phone number by its digits, whatever the spaces,
// dashes and brackets: a term without digits never matches.
func phoneScore(phone, term string, exact bool) float64 {
	t := digits(term)
	if t == "" {
		return 0
	}
	return matchScore(digits(phone), t, exact)
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
}

// Create and update

// POST /api/v2/organizations
func (s *Server) addOrg(r *http.Request) (any, *apiError) {
	return addParty(s, r, s.orgs, s.applyOrg)
}

// PATCH /api/v2/organizations/{id}
func (s *Server) updateOrg(r *http.Request, id int) (any, *apiError) {
	return updateParty(s, r, s.orgs, id, s.applyOrg)
}

// POST /api/v2/persons
func (s *Server) addPerson(r *http.Request) (any, *apiError) {
	return addParty(s, r, s.persons, s.applyPerson)
}

// PATCH /api/v2/persons/{id}
func (s *Server) updatePerson(r *http.Request, id int) (any, *apiError) {
	return updateParty(s, r, s.persons, id, s.applyPerson)
}

// partyRecord is a pointer to an organization or a person (T), records
// created and updated alike; J is its wire shape.
type partyRecord[T, J any] interface {
	*T
	shared() *party
	json() J
}

// addParty creates a record of records from a POST body: the name is
// required; the owner is the token's user and the entire company sees it
// unless the body says otherwise. apply validates the body and applies it.
func addParty[T, J any, P partyRecord[T, J]](s *Server, r *http.Request, records map[int]P, apply func(P, body, bool) *apiError) (any, *apiError) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if p, null := b.present("name"); !p || null {
		return nil, badRequest("The field 'name' is required")
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	rec := P(new(T))
	*rec.shared() = party{OwnerID: s.meID, VisibleTo: 3, AddTime: now, UpdateTime: now}
	if err := apply(rec, b, true); err != nil {
		return nil, err
	}
	id := nextID(records)
	rec.shared().ID = id
	records[id] = rec
	return single(rec.json())
}

// updateParty changes a record of records by a PATCH body, which apply
// applies to a copy: a refused update changes nothing.
func updateParty[T, J any, P partyRecord[T, J]](s *Server, r *http.Request, records map[int]P, id int, apply func(P, body, bool) *apiError) (any, *apiError) {
	rec, found := records[id]
	if !found {
		return nil, notFound()
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	updated := P(new(T))
	*updated = *rec
	if err := apply(updated, b, false); err != nil {
		return nil, err
	}
	updated.shared().UpdateTime = s.clock.Now().UTC().Truncate(time.Second)
	*rec = *updated
	return single(rec.json())
}

// applyOrg validates the body and applies it to o (a copy, on update).
func (s *Server) applyOrg(o *organization, b body, create bool) *apiError {
	if name, err := nonEmpty(b, "name"); err != nil {
		return err
	} else if name != nil {
		o.Name = *name
	}
	if err := s.applyCommon(b, create, &o.party); err != nil {
		return err
	}
	if p, null := b.present("address"); p && null {
		o.Address = nil
	} else if p {
		a, err := parseAddress(b)
		if err != nil {
			return err
		}
		o.Address = a
	}
	for _, f := range []struct {
		name   string
		target **string
	}{{"website", &o.Website}, {"linkedin", &o.Linkedin}} {
		v, err := b.str(f.name)
		if err != nil {
			return err
		}
		if p, _ := b.present(f.name); p {
			*f.target = v
		}
	}
	for _, f := range []struct {
		name   string
		target **int
	}{{"industry", &o.Industry}, {"annual_revenue", &o.AnnualRevenue}, {"employee_count", &o.EmployeeCount}} {
		v, err := b.integer(f.name)
		if err != nil {
			return err
		}
		if p, _ := b.present(f.name); p {
			*f.target = v
		}
	}
	return noCustomFields(b, "organizationFields")
}

// applyPerson validates the body and applies it to p (a copy, on update).
func (s *Server) applyPerson(p *person, b body, create bool) *apiError {
	if name, err := nonEmpty(b, "name"); err != nil {
		return err
	} else if name != nil {
		// The name's first word is the first name, the rest the last.
		p.FirstName, p.LastName, _ = strings.Cut(strings.Join(strings.Fields(*name), " "), " ")
	}
	if err := s.applyCommon(b, create, &p.party); err != nil {
		return err
	}
	if n, err := b.integer("org_id"); err != nil {
		return err
	} else if pr, null := b.present("org_id"); pr && null {
		p.OrgID = nil
	} else if n != nil {
		if s.orgs[*n] == nil {
			return badRequest("Organization with id %d does not exist", *n)
		}
		p.OrgID = ptr(*n)
	}
	for _, f := range []struct {
		name   string
		labels []string
		target *[]contactJSON
	}{
		{"emails", []string{"work", "home", "other"}, &p.Emails},
		{"phones", []string{"work", "home", "mobile", "other"}, &p.Phones},
	} {
		list, err := contacts(b, f.name, f.labels)
		if err != nil {
			return err
		}
		if pr, _ := b.present(f.name); pr {
			*f.target = list
		}
	}
	if title, err := b.str("job_title"); err != nil {
		return err
	} else if title != nil {
		p.JobTitle = *title
	}
	return noCustomFields(b, "personFields")
}

// applyCommon applies the members organizations and persons share:
// owner_id, visible_to, label_ids and, on create, add_time.
func (s *Server) applyCommon(b body, create bool, p *party) *apiError {
	if n, err := b.integer("owner_id"); err != nil {
		return err
	} else if n != nil {
		if *n < 1 || *n > len(s.users) {
			return badRequest("User with id %d does not exist", *n)
		}
		p.OwnerID = *n
	}
	if v, err := b.integer("visible_to"); err != nil {
		return err
	} else if v != nil {
		if *v != 1 && *v != 3 && *v != 5 && *v != 7 {
			return badRequest("The field 'visible_to' must be one of: 1, 3, 5, 7")
		}
		p.VisibleTo = *v
	}
	if ids, err := b.intList("label_ids"); err != nil {
		return err
	} else if ids != nil {
		p.LabelIDs = ids
	}
	if !create {
		return nil
	}
	if at, err := b.timeField("add_time"); err != nil {
		return err
	} else if at != nil {
		p.AddTime = *at
	}
	return nil
}

// nonEmpty returns a string field that, when sent, must not be null or
// blank; nil when absent.
func nonEmpty(b body, name string) (*string, *apiError) {
	v, err := b.str(name)
	if err != nil {
		return nil, err
	}
	if p, null := b.present(name); p && (null || strings.TrimSpace(*v) == "") {
		return nil, badRequest("The field '%s' must not be empty", name)
	}
	if v != nil {
		*v = strings.TrimSpace(*v)
	}
	return v, nil
}

// noCustomFields accepts an empty or null custom_fields object only: the
// sandbox company has no custom fields of this kind.
func noCustomFields(b body, fieldsPath string) *apiError {
	if p, null := b.present("custom_fields"); !p || null {
		return nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(b["custom_fields"], &in); err != nil || in == nil {
		return b.typeErr("custom_fields", "an object")
	}
	for k := range in {
		return badRequest("Custom field '%s' does not exist; custom fields are keyed by the field_code from GET /api/v2/%s", k, fieldsPath)
	}
	return nil
}

// contacts reads a list of emails or phones; null or [] empties it.
func contacts(b body, name string, labels []string) ([]contactJSON, *apiError) {
	if p, null := b.present(name); !p || null {
		return []contactJSON{}, nil
	}
	var in []struct {
		Value   *string `json:"value"`
		Primary *bool   `json:"primary"`
		Label   *string `json:"label"`
	}
	if err := json.Unmarshal(b[name], &in); err != nil {
		return nil, b.typeErr(name, "an array of objects with value, primary and label")
	}
	out := make([]contactJSON, 0, len(in))
	primary := -1
	for i, c := range in {
		if c.Value == nil || strings.TrimSpace(*c.Value) == "" {
			return nil, badRequest("Every item of '%s' needs a non-empty value", name)
		}
		label := "work"
		if c.Label != nil {
			label = *c.Label
			if !slices.Contains(labels, label) {
				return nil, badRequest("The label of an item of '%s' must be one of: %s", name, strings.Join(labels, ", "))
			}
		}
		if primary < 0 && c.Primary != nil && *c.Primary {
			primary = i
		}
		out = append(out, contactJSON{Value: strings.TrimSpace(*c.Value), Label: label})
	}
	if len(out) > 0 {
		out[max(primary, 0)].Primary = true
	}
	return out, nil
}

// parseAddress reads an organization's address object.
func parseAddress(b body) (*address, *apiError) {
	var in map[string]*string
	if err := json.Unmarshal(b["address"], &in); err != nil || in == nil {
		return nil, b.typeErr("address", "an object of strings")
	}
	get := func(k string) string {
		if v := in[k]; v != nil {
			return strings.TrimSpace(*v)
		}
		return ""
	}
	opt := func(k string) *string {
		if v := get(k); v != "" {
			return ptr(v)
		}
		return nil
	}
	a := &address{
		Value: get("value"), Country: get("country"), AdminArea1: get("admin_area_level_1"), AdminArea2: opt("admin_area_level_2"),
		Locality: get("locality"), Sublocality: opt("sublocality"), Route: get("route"), StreetNumber: get("street_number"),
		Subpremise: opt("subpremise"), PostalCode: get("postal_code"),
	}
	if a.Value == "" {
		// Composed as the seeded addresses are written: "12 Pike Street, 98101 Seattle, United States".
		var parts []string
		for _, p := range []string{strings.TrimSpace(a.StreetNumber + " " + a.Route), strings.TrimSpace(a.PostalCode + " " + a.Locality), a.Country} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		a.Value = strings.Join(parts, ", ")
	}
	if a.Value == "" {
		return nil, nil // an empty object clears the address
	}
	return a, nil
}

// nextID is the id of a new record: one more than the largest.
func nextID[T any](m map[int]T) int {
	n := 0
	for id := range m {
		n = max(n, id)
	}
	return n + 1
}
