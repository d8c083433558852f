package sandbox

import (
	"net/http"
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
	spec, ids, err := q.listStart("id", "update_time", "add_time", "due_date")
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
