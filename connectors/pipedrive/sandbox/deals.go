package sandbox

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

var dealStatuses = []string{"open", "won", "lost", "deleted"}

func (s *Server) dealByID(id int) (*deal, *apiError) {
	d, found := s.deals[id]
	if !found {
		return nil, notFound()
	}
	return d, nil
}

// GET /api/v2/deals
func (s *Server) listDeals(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	spec, ids, err := q.listStart("id", "update_time", "add_time")
	if err != nil {
		return nil, err
	}
	intFilters := map[string]func(*deal) *int{
		"owner_id":    func(d *deal) *int { return &d.OwnerID },
		"person_id":   func(d *deal) *int { return d.PersonID },
		"org_id":      func(d *deal) *int { return d.OrgID },
		"pipeline_id": func(d *deal) *int { return &d.PipelineID },
		"stage_id":    func(d *deal) *int { return &d.StageID },
	}
	type intFilter struct {
		get  func(*deal) *int
		want int
	}
	var filters []intFilter
	for _, name := range []string{"owner_id", "person_id", "org_id", "pipeline_id", "stage_id"} {
		n, given, ferr := q.intParam(name)
		if ferr != nil {
			return nil, ferr
		}
		if given {
			filters = append(filters, intFilter{intFilters[name], n})
		}
	}
	statuses, err := q.listParam("status", dealStatuses...)
	if err != nil {
		return nil, err
	}
	window, err := q.updatedWindow()
	if err != nil {
		return nil, err
	}
	view, err := s.parseDealView(q)
	if err != nil {
		return nil, err
	}

	var items []sortable
next:
	for _, d := range s.deals {
		if ids != nil && !ids[d.ID] {
			continue
		}
		if !matchStatus(d, statuses) || !window.contains(d.UpdateTime) {
			continue
		}
		for _, f := range filters {
			if v := f.get(d); v == nil || *v != f.want {
				continue next
			}
		}
		items = append(items, sortableDeal(d, spec.sortBy, s.dealOutput(d, view)))
	}
	data, nextCursor, err := page(items, spec)
	if err != nil {
		return nil, err
	}
	return listResponse{Success: true, Data: data, AdditionalData: nextCursorData{nextCursor}}, nil
}

// matchStatus applies the status filter; without one, every deal that is not deleted matches.
func matchStatus(d *deal, statuses []string) bool {
	if len(statuses) == 0 {
		return !d.Deleted
	}
	for _, st := range statuses {
		if st == "deleted" && d.Deleted || st != "deleted" && !d.Deleted && d.Status == st {
			return true
		}
	}
	return false
}

func sortableDeal(d *deal, sortBy string, item any) sortable {
	it := sortable{id: d.ID, item: item}
	switch sortBy {
	case "update_time":
		it.key, it.value = timeKey(d.UpdateTime)
	case "add_time":
		it.key, it.value = timeKey(d.AddTime)
	default:
		it.key, it.value = idKey(d.ID), d.ID
	}
	return it
}

// GET /api/v2/deals/{id}
func (s *Server) getDeal(r *http.Request, id int) (any, *apiError) {
	d, err := s.dealByID(id)
	if err != nil {
		return nil, err
	}
	view, err := s.parseDealView(query{r.URL.Query()})
	if err != nil {
		return nil, err
	}
	return single(s.dealOutput(d, view))
}

// DELETE /api/v2/deals/{id} marks the deal as deleted.
func (s *Server) deleteDeal(_ *http.Request, id int) (any, *apiError) {
	d, err := s.dealByID(id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	if !d.Deleted {
		d.Deleted = true
		d.Status = "deleted"
		d.UpdateTime = now
	}
	return single(idRef{ID: d.ID})
}

// POST /api/v2/deals
func (s *Server) addDeal(r *http.Request) (any, *apiError) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if p, null := b.present("title"); !p || null {
		return nil, badRequest("The field 'title' is required")
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	d := &deal{
		CreatorUserID: s.meID, OwnerID: s.meID, Currency: s.users[s.meID-1].Currency, Status: "open",
		VisibleTo: 3, AddTime: now, UpdateTime: now, LabelIDs: []int{}, Origin: "API", CustomFields: map[string]any{},
	}
	if err := s.applyDeal(d, b, now, true); err != nil {
		return nil, err
	}
	d.ID = s.nextDealID
	s.nextDealID++
	s.deals[d.ID] = d
	return single(s.dealJSON(d, dealView{}))
}

// PATCH /api/v2/deals/{id}
func (s *Server) updateDeal(r *http.Request, id int) (any, *apiError) {
	d, err := s.dealByID(id)
	if err != nil {
		return nil, err
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	updated := *d
	if err := s.applyDeal(&updated, b, now, false); err != nil {
		return nil, err
	}
	updated.UpdateTime = now
	*d = updated
	return single(s.dealJSON(d, dealView{}))
}

// applyDeal validates the body and applies it to d (a copy, on update), enforcing Pipedrive's
// field rules and side effects.
func (s *Server) applyDeal(d *deal, b body, now time.Time, create bool) *apiError {
	title, err := b.str("title")
	if err != nil {
		return err
	}
	if p, null := b.present("title"); p && (null || title == nil || strings.TrimSpace(*title) == "") {
		return badRequest("The field 'title' must not be empty")
	}
	if title != nil {
		d.Title = strings.TrimSpace(*title)
	}

	if n, err := b.integer("owner_id"); err != nil {
		return err
	} else if n != nil {
		if *n < 1 || *n > len(s.users) {
			return badRequest("User with id %d does not exist", *n)
		}
		d.OwnerID = *n
	}
	for _, ref := range []struct {
		field  string
		target **int
		exists func(int) bool
		what   string
	}{
		{"person_id", &d.PersonID, func(id int) bool { return s.persons[id] != nil }, "Person"},
		{"org_id", &d.OrgID, func(id int) bool { return s.orgs[id] != nil }, "Organization"},
	} {
		n, err := b.integer(ref.field)
		if err != nil {
			return err
		}
		if p, null := b.present(ref.field); p && null {
			*ref.target = nil
		} else if n != nil {
			if !ref.exists(*n) {
				return badRequest("%s with id %d does not exist", ref.what, *n)
			}
			*ref.target = ptr(*n)
		}
	}

	if v, err := b.number("value"); err != nil {
		return err
	} else if v != nil {
		if *v < 0 {
			return badRequest("The field 'value' must not be negative")
		}
		d.Value = *v
	}
	if c, err := b.str("currency"); err != nil {
		return err
	} else if c != nil {
		if !currencyRe.MatchString(*c) {
			return badRequest("The field 'currency' must be a 3-letter ISO 4217 currency code")
		}
		d.Currency = *c
	}
	if v, err := b.integer("visible_to"); err != nil {
		return err
	} else if v != nil {
		if *v != 1 && *v != 3 && *v != 5 && *v != 7 {
			return badRequest("The field 'visible_to' must be one of: 1, 3, 5, 7")
		}
		d.VisibleTo = *v
	}
	if p, err := b.number("probability"); err != nil {
		return err
	} else if p != nil {
		if *p < 0 || *p > 100 {
			return badRequest("The field 'probability' must be between 0 and 100")
		}
		d.Probability = ptr(*p)
	} else if present, null := b.present("probability"); present && null {
		d.Probability = nil
	}
	if present, null := b.present("expected_close_date"); present && null {
		d.ExpectedCloseDate = nil
	} else if date, err := b.dateField("expected_close_date"); err != nil {
		return err
	} else if date != nil {
		d.ExpectedCloseDate = date
	}
	if labels, err := b.intList("label_ids"); err != nil {
		return err
	} else if labels != nil {
		d.LabelIDs = labels
	}
	if err := s.applyCustomFields(d, b); err != nil {
		return err
	}
	if arch, err := b.boolean("is_archived"); err != nil {
		return err
	} else if arch != nil {
		d.Archived = *arch
		if *arch && d.ArchiveTime == nil {
			d.ArchiveTime = ptr(now)
		} else if !*arch {
			d.ArchiveTime = nil
		}
	}
	if at, err := b.timeField("archive_time"); err != nil {
		return err
	} else if at != nil {
		if !d.Archived {
			return badRequest("The field 'archive_time' can only be set if the deal is archived")
		}
		d.ArchiveTime = at
	}

	if err := s.applyStage(d, b, now, create); err != nil {
		return err
	}
	return applyStatus(d, b, now)
}

// applyStage resolves pipeline_id and stage_id: the stage decides the pipeline; a pipeline
// alone moves the deal to that pipeline's first stage.
func (s *Server) applyStage(d *deal, b body, now time.Time, create bool) *apiError {
	pipeID, err := b.integer("pipeline_id")
	if err != nil {
		return err
	}
	stageID, err := b.integer("stage_id")
	if err != nil {
		return err
	}
	if pipeID != nil && (*pipeID < 1 || *pipeID > len(s.pipelines)) {
		return badRequest("Pipeline with id %d does not exist", *pipeID)
	}
	var st *stage
	switch {
	case stageID != nil:
		if *stageID < 1 || *stageID > len(s.stages) {
			return badRequest("Stage with id %d does not exist", *stageID)
		}
		st = s.stages[*stageID-1]
		if pipeID != nil && st.PipelineID != *pipeID {
			return badRequest("Stage with id %d does not belong to pipeline with id %d", st.ID, *pipeID)
		}
	case pipeID != nil && (create || *pipeID != d.PipelineID):
		st = s.pipelineStages(*pipeID)[0]
	case create:
		first := s.pipelines[0]
		for _, p := range s.pipelines {
			if p.OrderNr < first.OrderNr {
				first = p
			}
		}
		st = s.pipelineStages(first.ID)[0]
	}
	if st == nil {
		return nil
	}
	if !create && st.ID != d.StageID {
		d.StageChangeTime = ptr(now)
	}
	d.StageID, d.PipelineID = st.ID, st.PipelineID
	return nil
}

// applyStatus enforces the status-dependent fields and sets or clears the close times.
func applyStatus(d *deal, b body, now time.Time) *apiError {
	status, err := b.str("status")
	if err != nil {
		return err
	}
	target := d.Status
	if status != nil {
		found := false
		for _, st := range dealStatuses {
			if *status == st {
				found = true
			}
		}
		if !found {
			return badRequest("The field 'status' must be one of: %s", strings.Join(dealStatuses, ", "))
		}
		target = *status
	}
	reason, err := b.str("lost_reason")
	if err != nil {
		return err
	}
	wonTime, err := b.timeField("won_time")
	if err != nil {
		return err
	}
	lostTime, err := b.timeField("lost_time")
	if err != nil {
		return err
	}
	closeTime, err := b.timeField("close_time")
	if err != nil {
		return err
	}
	if reason != nil && target != "lost" {
		return badRequest("The field 'lost_reason' can only be set if deal status is lost")
	}
	if wonTime != nil && target != "won" {
		return badRequest("The field 'won_time' can only be set if deal status is won")
	}
	if lostTime != nil && target != "lost" {
		return badRequest("The field 'lost_time' can only be set if deal status is lost")
	}
	if closeTime != nil && target != "won" && target != "lost" {
		return badRequest("The field 'close_time' can only be set if deal status is won or lost")
	}

	changed := target != d.Status
	switch target {
	case "open":
		if changed {
			d.WonTime, d.LostTime, d.CloseTime, d.LostReason = nil, nil, nil, nil
		}
		d.Deleted = false
	case "won":
		if changed {
			d.WonTime, d.CloseTime = ptr(now), ptr(now)
			d.LostTime, d.LostReason = nil, nil
		}
		d.Deleted = false
	case "lost":
		if changed {
			d.LostTime, d.CloseTime = ptr(now), ptr(now)
			d.WonTime = nil
		}
		d.Deleted = false
	case "deleted":
		d.Deleted = true
	}
	d.Status = target
	if wonTime != nil {
		d.WonTime = wonTime
		if closeTime == nil {
			d.CloseTime = wonTime
		}
	}
	if lostTime != nil {
		d.LostTime = lostTime
		if closeTime == nil {
			d.CloseTime = lostTime
		}
	}
	if closeTime != nil {
		d.CloseTime = closeTime
	}
	if reason != nil {
		d.LostReason = reason
	} else if present, null := b.present("lost_reason"); present && null {
		d.LostReason = nil
	}
	return nil
}

// GET /api/v2/deals/search
func (s *Server) searchDeals(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	term, exact, err := searchTerm(q)
	if err != nil {
		return nil, err
	}
	fields, err := q.listParam("fields", "custom_fields", "notes", "title")
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		fields = []string{"custom_fields", "notes", "title"}
	}
	personID, hasPerson, err := q.intParam("person_id")
	if err != nil {
		return nil, err
	}
	orgID, hasOrg, err := q.intParam("organization_id")
	if err != nil {
		return nil, err
	}
	statuses, err := q.listParam("status", "open", "won", "lost")
	if err != nil {
		return nil, err
	}
	limit, offset, err := q.searchPage()
	if err != nil {
		return nil, err
	}

	var results []searchResult
	var ids []int
	for _, d := range s.deals {
		if d.Deleted || !matchStatus(d, statuses) {
			continue
		}
		if hasPerson && (d.PersonID == nil || *d.PersonID != personID) {
			continue
		}
		if hasOrg && (d.OrgID == nil || *d.OrgID != orgID) {
			continue
		}
		score := 0.0
		matchedNotes, matchedCustom := []string{}, []string{}
		for _, f := range fields {
			switch f {
			case "title":
				score = max(score, matchScore(d.Title, term, exact))
			case "notes":
				for _, n := range d.Notes {
					if sc := matchScore(n, term, exact); sc > 0 {
						score = max(score, sc*0.8)
						matchedNotes = append(matchedNotes, n)
					}
				}
			case "custom_fields":
				for _, str := range s.searchableCustomValues(d) {
					if sc := matchScore(str, term, exact); sc > 0 {
						score = max(score, sc*0.9)
						matchedCustom = append(matchedCustom, str)
					}
				}
			}
		}
		if score == 0 {
			continue
		}
		st := s.stages[d.StageID-1]
		item := dealSearchItem{
			ID: d.ID, Type: "deal", Title: d.Title, Value: numberValue(d.Value), Currency: d.Currency, Status: d.Status,
			VisibleTo: d.VisibleTo, Owner: idRef{d.OwnerID}, Stage: namedRef{st.ID, st.Name},
			CustomFields: matchedCustom, Notes: matchedNotes, IsArchived: d.Archived,
		}
		if d.PersonID != nil {
			item.Person = &namedRef{*d.PersonID, s.persons[*d.PersonID].name()}
		}
		if d.OrgID != nil {
			o := s.orgs[*d.OrgID]
			item.Organization = &orgRef{o.ID, o.Name, o.Address.formatted()}
		}
		results = append(results, searchResult{ResultScore: score, Item: item})
		ids = append(ids, d.ID)
	}
	return searchResponse(results, ids, limit, offset), nil
}

// searchTerm reads term and exact_match: a term needs at least 2 characters unless exact.
func searchTerm(q query) (string, bool, *apiError) {
	exact, _, err := q.boolParam("exact_match")
	if err != nil {
		return "", false, err
	}
	term := strings.TrimSpace(q.v.Get("term"))
	if term == "" {
		return "", false, badRequest("The parameter 'term' is required")
	}
	if !exact && len([]rune(term)) < 2 {
		return "", false, badRequest("The parameter 'term' must be at least 2 characters long")
	}
	return term, exact, nil
}

// matchScore scores a field against a term: 0 for no match; exact_match needs the whole value.
func matchScore(value, term string, exact bool) float64 {
	v, t := lower(value), lower(term)
	switch {
	case v == t:
		return 1.5
	case exact:
		return 0
	case strings.HasPrefix(v, t):
		return 1.2
	case strings.Contains(v, t):
		return 0.8 + 0.2*float64(len(t))/float64(len(v))
	}
	return 0
}

// searchResponse orders results by score (then id) and cuts one page.
func searchResponse(results []searchResult, ids []int, limit, offset int) listResponse {
	idx := make([]int, len(results))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ra, rb := results[idx[a]], results[idx[b]]
		if ra.ResultScore != rb.ResultScore {
			return ra.ResultScore > rb.ResultScore
		}
		return ids[idx[a]] < ids[idx[b]]
	})
	items := []searchResult{}
	for i := offset; i < len(idx) && i < offset+limit; i++ {
		r := results[idx[i]]
		r.ResultScore = float64(int(r.ResultScore*1000+0.5)) / 1000
		items = append(items, r)
	}
	return listResponse{Success: true, Data: searchData{Items: items}, AdditionalData: nextCursorData{searchNext(offset, limit, len(idx))}}
}
