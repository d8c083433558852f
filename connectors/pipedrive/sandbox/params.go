package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	defaultLimit = 100
	maxLimit     = 500
)

// query wraps URL query parameters with Pipedrive-style validation.
type query struct{ v url.Values }

// intParam parses an optional integer parameter; ok reports whether it was given.
func (q query) intParam(name string) (n int, ok bool, err *apiError) {
	raw := q.v.Get(name)
	if raw == "" {
		return 0, false, nil
	}
	n, convErr := strconv.Atoi(raw)
	if convErr != nil {
		return 0, false, badRequest("The parameter '%s' must be an integer", name)
	}
	return n, true, nil
}

// boolParam parses an optional boolean parameter ("true"/"false", also "1"/"0").
func (q query) boolParam(name string) (b bool, ok bool, err *apiError) {
	switch strings.ToLower(q.v.Get(name)) {
	case "":
		return false, false, nil
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, badRequest("The parameter '%s' must be a boolean", name)
}

// enumParam returns the parameter's value (or def) after checking it against allowed.
func (q query) enumParam(name, def string, allowed ...string) (string, *apiError) {
	raw := q.v.Get(name)
	if raw == "" {
		return def, nil
	}
	for _, a := range allowed {
		if raw == a {
			return raw, nil
		}
	}
	return "", badRequest("The parameter '%s' must be one of: %s", name, strings.Join(allowed, ", "))
}

// listParam parses a comma-separated list whose elements must be among allowed.
func (q query) listParam(name string, allowed ...string) ([]string, *apiError) {
	raw := q.v.Get(name)
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, a := range allowed {
			if part == a {
				found = true
			}
		}
		if !found {
			return nil, badRequest("The parameter '%s' must be one of: %s", name, strings.Join(allowed, ", "))
		}
		out = append(out, part)
	}
	return out, nil
}

// idsParam parses the "ids" parameter: up to 100 comma-separated integers.
func (q query) idsParam() (map[int]bool, *apiError) {
	raw := q.v.Get("ids")
	if raw == "" {
		return nil, nil
	}
	parts := strings.Split(raw, ",")
	if len(parts) > 100 {
		return nil, badRequest("The parameter 'ids' must contain at most 100 ids")
	}
	out := map[int]bool{}
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, badRequest("The parameter 'ids' must be a comma separated list of integers")
		}
		out[n] = true
	}
	return out, nil
}

// timeParam parses an optional RFC 3339 time.
func (q query) timeParam(name string) (*time.Time, *apiError) {
	raw := q.v.Get(name)
	if raw == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return nil, badRequest("The parameter '%s' must be a date in RFC3339 format, e.g. 2025-01-01T10:20:00Z", name)
	}
	return &t, nil
}

func (q query) limit() (int, *apiError) {
	raw := q.v.Get("limit")
	if raw == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, badRequest("The parameter 'limit' must be an integer")
	}
	if n < 1 || n > maxLimit {
		return 0, badRequest("The parameter 'limit' must be between 1 and %d", maxLimit)
	}
	return n, nil
}

// updatedWindow checks update_time against updated_since (inclusive) and updated_until (exclusive).
type updatedWindow struct{ since, until *time.Time }

func (q query) updatedWindow() (updatedWindow, *apiError) {
	since, err := q.timeParam("updated_since")
	if err != nil {
		return updatedWindow{}, err
	}
	until, err := q.timeParam("updated_until")
	if err != nil {
		return updatedWindow{}, err
	}
	return updatedWindow{since, until}, nil
}

func (w updatedWindow) contains(t time.Time) bool {
	if w.since != nil && t.Before(*w.since) {
		return false
	}
	if w.until != nil && !t.Before(*w.until) {
		return false
	}
	return true
}

// Cursor pagination. A cursor names the first item of the next page by its sort value and id,
// like Pipedrive's own (base64 of {"field","fieldValue","sortDirection","id"}), so inserts and
// deletes between pages neither repeat nor skip the remaining items.

type cursorKey struct {
	Field         string `json:"field"`
	FieldValue    any    `json:"fieldValue"`
	SortDirection string `json:"sortDirection"`
	ID            int    `json:"id"`
}

// sortable is one list element as seen by the pager.
type sortable struct {
	id    int
	key   string // comparable rendering of the sort value
	value any    // the sort value as written in the cursor
	item  any
}

// idKey renders an id so that string order equals numeric order.
func idKey(id int) string { return fmt.Sprintf("%020d", id) }

// timeKey renders a time; the fixed UTC layout sorts lexicographically.
func timeKey(t time.Time) (string, any) { s := ts(t); return s, s }

// listStart reads what every v2 list takes: the paging and sort
// (listSpec of sortFields), filter_id (the sandbox company has no saved
// filters: any is not found) and ids (nil when not given).
func (q query) listStart(sortFields ...string) (listSpec, map[int]bool, *apiError) {
	spec, err := q.listSpec(sortFields...)
	if err != nil {
		return listSpec{}, nil, err
	}
	if _, given, ferr := q.intParam("filter_id"); ferr != nil {
		return listSpec{}, nil, ferr
	} else if given {
		return listSpec{}, nil, notFound()
	}
	ids, err := q.idsParam()
	if err != nil {
		return listSpec{}, nil, err
	}
	return spec, ids, nil
}

// listSpec is a list request's sort and page.
type listSpec struct {
	sortBy string
	desc   bool
	limit  int
	cursor *cursorKey
}

// listSpec parses sort_by (among fields, default "id"), sort_direction, limit and cursor.
func (q query) listSpec(fields ...string) (listSpec, *apiError) {
	sortBy, err := q.enumParam("sort_by", "id", fields...)
	if err != nil {
		return listSpec{}, err
	}
	dir, err := q.enumParam("sort_direction", "asc", "asc", "desc")
	if err != nil {
		return listSpec{}, err
	}
	limit, err := q.limit()
	if err != nil {
		return listSpec{}, err
	}
	spec := listSpec{sortBy: sortBy, desc: dir == "desc", limit: limit}
	if raw := q.v.Get("cursor"); raw != "" {
		c, cerr := decodeCursor(raw)
		if cerr != nil || c.Field != sortBy || c.SortDirection != dir {
			return listSpec{}, badRequest("The parameter 'cursor' is invalid")
		}
		spec.cursor = c
	}
	return spec, nil
}

func decodeCursor(raw string) (*cursorKey, error) {
	buf, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	if err != nil {
		return nil, err
	}
	var c cursorKey
	dec := json.NewDecoder(strings.NewReader(string(buf)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if c.Field == "" || c.ID <= 0 {
		return nil, fmt.Errorf("incomplete cursor")
	}
	return &c, nil
}

func encodeCursor(c cursorKey) string {
	buf, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// cursorSortKey renders the cursor's sort value the way the list renders its elements.
func cursorSortKey(c *cursorKey) (string, bool) {
	switch v := c.FieldValue.(type) {
	case nil:
		return "", true
	case json.Number:
		n, err := strconv.Atoi(v.String())
		if err != nil {
			return "", false
		}
		return idKey(n), true
	case string:
		return v, true
	}
	return "", false
}

// page sorts the elements, skips to the cursor and cuts one page, returning the items and
// the cursor of the next page (nil at the end).
func page(items []sortable, spec listSpec) ([]any, *string, *apiError) {
	less := func(a, b sortable) bool {
		if a.key != b.key {
			return a.key < b.key
		}
		return a.id < b.id
	}
	sort.Slice(items, func(i, j int) bool {
		if spec.desc {
			return less(items[j], items[i])
		}
		return less(items[i], items[j])
	})
	start := 0
	if spec.cursor != nil {
		key, ok := cursorSortKey(spec.cursor)
		if !ok {
			return nil, nil, badRequest("The parameter 'cursor' is invalid")
		}
		mark := sortable{id: spec.cursor.ID, key: key}
		start = sort.Search(len(items), func(i int) bool {
			if spec.desc {
				return !less(mark, items[i]) // items[i] <= mark
			}
			return !less(items[i], mark) // items[i] >= mark
		})
	}
	end := min(start+spec.limit, len(items))
	out := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, it.item)
	}
	var next *string
	if end < len(items) {
		n := items[end]
		dir := "asc"
		if spec.desc {
			dir = "desc"
		}
		next = ptr(encodeCursor(cursorKey{Field: spec.sortBy, FieldValue: n.value, SortDirection: dir, ID: n.id}))
	}
	return out, next, nil
}

// offsetCursor pages search results, whose order is by relevance.
type offsetCursor struct {
	Offset int `json:"offset"`
}

func (q query) searchPage() (limit, offset int, err *apiError) {
	limit, err = q.limit()
	if err != nil {
		return 0, 0, err
	}
	if raw := q.v.Get("cursor"); raw != "" {
		buf, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
		var c offsetCursor
		if derr != nil || json.Unmarshal(buf, &c) != nil || c.Offset <= 0 {
			return 0, 0, badRequest("The parameter 'cursor' is invalid")
		}
		offset = c.Offset
	}
	return limit, offset, nil
}

func searchNext(offset, limit, total int) *string {
	if offset+limit >= total {
		return nil
	}
	buf, _ := json.Marshal(offsetCursor{Offset: offset + limit})
	return ptr(base64.RawURLEncoding.EncodeToString(buf))
}
