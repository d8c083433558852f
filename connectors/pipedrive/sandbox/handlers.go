package sandbox

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Pipelines and stages

func (s *Server) listPipelines(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, err := q.listSpec("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	var items []sortable
	for _, p := range s.pipelines {
		items = append(items, sortableEntity(p.ID, p.AddTime, p.UpdateTime, spec.sortBy, p.json()))
	}
	return listPage(items, spec)
}

func (s *Server) getPipeline(_ *http.Request, id int) (any, *apiError) {
	if id > len(s.pipelines) {
		return nil, notFound()
	}
	return single(s.pipelines[id-1].json())
}

func (s *Server) listStages(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, err := q.listSpec("id", "update_time", "add_time", "order_nr")
	if err != nil {
		return nil, err
	}
	pipeID, hasPipe, err := q.intParam("pipeline_id")
	if err != nil {
		return nil, err
	}
	var items []sortable
	for _, st := range s.stages {
		if hasPipe && st.PipelineID != pipeID {
			continue
		}
		it := sortableEntity(st.ID, st.AddTime, st.UpdateTime, spec.sortBy, st.json())
		if spec.sortBy == "order_nr" {
			it.key, it.value = idKey(st.OrderNr), st.OrderNr
		}
		items = append(items, it)
	}
	return listPage(items, spec)
}

func (s *Server) getStage(_ *http.Request, id int) (any, *apiError) {
	if id > len(s.stages) {
		return nil, notFound()
	}
	return single(s.stages[id-1].json())
}

func sortableEntity(id int, added, updated time.Time, sortBy string, item any) sortable {
	it := sortable{id: id, item: item}
	switch sortBy {
	case "update_time":
		it.key, it.value = timeKey(updated)
	case "add_time":
		it.key, it.value = timeKey(added)
	default:
		it.key, it.value = idKey(id), id
	}
	return it
}

func listPage(items []sortable, spec listSpec) (any, *apiError) {
	data, next, err := page(items, spec)
	if err != nil {
		return nil, err
	}
	return listResponse{Success: true, Data: data, AdditionalData: nextCursorData{next}}, nil
}

// Activities

func (s *Server) listActivities(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, err := q.listSpec("id", "update_time", "add_time", "due_date")
	if err != nil {
		return nil, err
	}
	if _, given, ferr := q.intParam("filter_id"); ferr != nil {
		return nil, ferr
	} else if given {
		return nil, notFound()
	}
	ids, err := q.idsParam()
	if err != nil {
		return nil, err
	}
	type intFilter struct {
		get  func(*activity) *int
		want int
	}
	var filters []intFilter
	for _, f := range []struct {
		name string
		get  func(*activity) *int
	}{
		{"owner_id", func(a *activity) *int { return &a.OwnerID }},
		{"deal_id", func(a *activity) *int { return a.DealID }},
		{"person_id", func(a *activity) *int { return a.PersonID }},
		{"org_id", func(a *activity) *int { return a.OrgID }},
	} {
		n, given, ferr := q.intParam(f.name)
		if ferr != nil {
			return nil, ferr
		}
		if given {
			filters = append(filters, intFilter{f.get, n})
		}
	}
	done, hasDone, err := q.boolParam("done")
	if err != nil {
		return nil, err
	}
	window, err := q.updatedWindow()
	if err != nil {
		return nil, err
	}
	include, err := q.listParam("include_fields", "attendees")
	if err != nil {
		return nil, err
	}
	leadFilter := q.v.Get("lead_id") != "" // the sandbox has no leads

	var items []sortable
next:
	for _, a := range s.activities {
		if a.Deleted || leadFilter || (ids != nil && !ids[a.ID]) || (hasDone && a.Done != done) || !window.contains(a.UpdateTime) {
			continue
		}
		for _, f := range filters {
			if v := f.get(a); v == nil || *v != f.want {
				continue next
			}
		}
		it := sortableEntity(a.ID, a.AddTime, a.UpdateTime, spec.sortBy, a.json(len(include) > 0))
		if spec.sortBy == "due_date" {
			if a.DueDate != nil {
				it.key, it.value = *a.DueDate, *a.DueDate
			} else {
				it.key, it.value = "", nil
			}
		}
		items = append(items, it)
	}
	return listPage(items, spec)
}

func (s *Server) getActivity(r *http.Request, id int) (any, *apiError) {
	a, found := s.activities[id]
	if !found {
		return nil, notFound()
	}
	include, err := query{r.URL.Query()}.listParam("include_fields", "attendees")
	if err != nil {
		return nil, err
	}
	return single(a.json(len(include) > 0))
}

var durationRe = regexp.MustCompile(`^\d{1,3}:[0-5]\d(:[0-5]\d)?$`)

func (s *Server) addActivity(r *http.Request) (any, *apiError) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	a := &activity{OwnerID: s.meID, CreatorID: s.meID, AddTime: now, UpdateTime: now, Participants: []participant{}}

	typ, err := b.str("type")
	if err != nil {
		return nil, err
	}
	var at *activityType
	if typ == nil {
		at = s.activityTypes[0]
	} else {
		for _, t := range s.activityTypes {
			if t.Key == *typ {
				at = t
			}
		}
		if at == nil {
			return nil, badRequest("The field 'type' must be an existing activity type key_string")
		}
	}
	a.Type = at.Key
	subject, err := b.str("subject")
	if err != nil {
		return nil, err
	}
	a.Subject = at.Name
	if subject != nil && strings.TrimSpace(*subject) != "" {
		a.Subject = *subject
	}
	if n, err := b.integer("owner_id"); err != nil {
		return nil, err
	} else if n != nil {
		if *n < 1 || *n > len(s.users) {
			return nil, badRequest("User with id %d does not exist", *n)
		}
		a.OwnerID = *n
	}
	if n, err := b.integer("deal_id"); err != nil {
		return nil, err
	} else if n != nil {
		d, found := s.deals[*n]
		if !found {
			return nil, badRequest("Deal with id %d does not exist", *n)
		}
		a.DealID = ptr(d.ID)
		a.PersonID, a.OrgID = d.PersonID, d.OrgID
	}
	if lead, err := b.str("lead_id"); err != nil {
		return nil, err
	} else if lead != nil {
		return nil, badRequest("Lead with id %s does not exist", *lead)
	}
	if n, err := b.integer("project_id"); err != nil {
		return nil, err
	} else if n != nil {
		return nil, badRequest("Project with id %d does not exist", *n)
	}
	if n, err := b.integer("person_id"); err != nil {
		return nil, err
	} else if n != nil {
		if s.persons[*n] == nil {
			return nil, badRequest("Person with id %d does not exist", *n)
		}
		a.PersonID = ptr(*n)
	}
	if n, err := b.integer("org_id"); err != nil {
		return nil, err
	} else if n != nil {
		if s.orgs[*n] == nil {
			return nil, badRequest("Organization with id %d does not exist", *n)
		}
		a.OrgID = ptr(*n)
	}
	if a.DueDate, err = b.dateField("due_date"); err != nil {
		return nil, err
	}
	if a.DueTime, err = b.clockField("due_time"); err != nil {
		return nil, err
	}
	if dur, err := b.str("duration"); err != nil {
		return nil, err
	} else if dur != nil {
		if !durationRe.MatchString(*dur) {
			return nil, badRequest("The field 'duration' must be a duration in the format HH:MM")
		}
		if strings.Count(*dur, ":") == 1 {
			*dur += ":00"
		}
		if len(*dur) < 8 {
			*dur = "0" + *dur
		}
		a.Duration = dur
	}
	if v, err := b.boolean("busy"); err != nil {
		return nil, err
	} else if v != nil {
		a.Busy = *v
	}
	if v, err := b.boolean("done"); err != nil {
		return nil, err
	} else if v != nil && *v {
		a.Done = true
		a.DoneTime = ptr(now)
	}
	if v, err := b.integer("priority"); err != nil {
		return nil, err
	} else if v != nil {
		a.Priority = v
	}
	if a.Note, err = b.str("note"); err != nil {
		return nil, err
	}
	if a.Public, err = b.str("public_description"); err != nil {
		return nil, err
	}
	if p, null := b.present("location"); p && !null {
		var loc map[string]string
		if err := unmarshalField(b, "location", &loc); err != nil {
			return nil, err
		}
		a.Location = loc
	}
	if p, null := b.present("participants"); p && !null {
		var parts []participant
		if err := unmarshalField(b, "participants", &parts); err != nil {
			return nil, err
		}
		for _, pt := range parts {
			if s.persons[pt.PersonID] == nil {
				return nil, badRequest("Person with id %d does not exist", pt.PersonID)
			}
		}
		a.Participants = parts
	} else if a.PersonID != nil {
		a.Participants = []participant{{PersonID: *a.PersonID, Primary: true}}
	}

	a.ID = s.nextActID
	s.nextActID++
	s.activities[a.ID] = a
	return single(a.json(false))
}

// Persons and organizations

func (s *Server) listPersons(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, err := q.listSpec("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	if _, given, ferr := q.intParam("filter_id"); ferr != nil {
		return nil, ferr
	} else if given {
		return nil, notFound()
	}
	ids, err := q.idsParam()
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

func (s *Server) getPerson(_ *http.Request, id int) (any, *apiError) {
	p, found := s.persons[id]
	if !found {
		return nil, notFound()
	}
	return single(p.json())
}

func (s *Server) listOrgs(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, err := q.listSpec("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	if _, given, ferr := q.intParam("filter_id"); ferr != nil {
		return nil, ferr
	} else if given {
		return nil, notFound()
	}
	ids, err := q.idsParam()
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

func (s *Server) getOrg(_ *http.Request, id int) (any, *apiError) {
	o, found := s.orgs[id]
	if !found {
		return nil, notFound()
	}
	return single(o.json())
}

func (s *Server) searchOrgs(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	term, exact, err := searchTerm(q)
	if err != nil {
		return nil, err
	}
	fields, err := q.listParam("fields", "address", "custom_fields", "notes", "name")
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		fields = []string{"address", "custom_fields", "notes", "name"}
	}
	limit, offset, err := q.searchPage()
	if err != nil {
		return nil, err
	}
	var results []searchResult
	var ids []int
	for _, o := range s.orgs {
		score := 0.0
		for _, f := range fields {
			switch f {
			case "name":
				score = max(score, matchScore(o.Name, term, exact))
			case "address":
				if o.Address != nil {
					score = max(score, matchScore(o.Address.Value, term, exact)*0.7)
				}
			}
		}
		if score == 0 {
			continue
		}
		results = append(results, searchResult{ResultScore: score, Item: orgSearchItem{
			ID: o.ID, Type: "organization", Name: o.Name, Address: o.Address.formatted(), VisibleTo: 3,
			Owner: idRef{o.OwnerID}, CustomFields: []string{}, Notes: []string{},
		}})
		ids = append(ids, o.ID)
	}
	return searchResponse(results, ids, limit, offset), nil
}

// v1 endpoints without a v2 equivalent

func (s *Server) v1Users(*http.Request) (any, *apiError) {
	out := make([]userJSON, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.json(s.meID))
	}
	return single(out)
}

func (s *Server) v1Me(*http.Request) (any, *apiError) {
	me := s.users[s.meID-1]
	return single(meJSON{
		userJSON: me.json(s.meID), CompanyID: s.company.ID, CompanyName: s.company.Name,
		CompanyDomain: s.company.Domain, CompanyCountry: s.company.Country, CompanyIndustry: s.company.Industry,
		Language: languageJSONOut{LanguageCode: "en", CountryCode: "US"},
	})
}

func (s *Server) v1ActivityTypes(*http.Request) (any, *apiError) {
	out := make([]activityTypeJSON, 0, len(s.activityTypes))
	for _, t := range s.activityTypes {
		out = append(out, t.json())
	}
	return single(out)
}
