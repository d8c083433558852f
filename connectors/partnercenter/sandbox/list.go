package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// TopMode says how the list endpoint reads $top.
type TopMode int

const (
	// TopPageSize reads $top as the page size: every page holds up to $top referrals and
	// @odata.nextLink continues until the collection ends (the default).
	TopPageSize TopMode = iota
	// TopCap reads $top the way the connector definition describes it ("Total number of
	// entries to retrieve") and OData defines it: a cap on the whole collection. Pages hold
	// up to Options.PageSize referrals; @odata.nextLink carries the remaining $top and is
	// absent once $top referrals have been served, even when more match.
	TopCap
)

// SetTopMode sets how $top is read by later list requests. Safe for concurrent use.
func (s *Server) SetTopMode(m TopMode) { s.topModeV.Store(int32(m)) }

func (s *Server) topMode() TopMode { return TopMode(s.topModeV.Load()) }

// listQuery is a validated set of OData query options.
type listQuery struct {
	raw       map[string]string // option name (lower case, with $) → value, as sent
	filter    *filter
	order     []orderKey
	orderSig  string // canonical $orderby, bound into skip tokens
	sel       selection
	top       int // page size
	cap       int // TopCap: the referrals still to serve; -1 without a cap
	skip      int
	count     bool
	skipToken *skipToken
}

var knownOptions = []string{"$filter", "$orderby", "$select", "$top", "$skip", "$count", "$expand", "$skiptoken"}

func (s *Server) parseListQuery(r *http.Request) (*listQuery, *apiError) {
	q := &listQuery{raw: map[string]string{}, top: s.pageSize, cap: -1}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("The query string is malformed: %v", err)
	}
	for name, vals := range values {
		if !strings.HasPrefix(name, "$") {
			continue // not an OData system query option
		}
		lname := strings.ToLower(name)
		if !slices.Contains(knownOptions, lname) {
			return nil, badRequest("The query parameter '%s' is not supported.", name)
		}
		if _, dup := q.raw[lname]; dup || len(vals) > 1 {
			return nil, badRequest("Query option '%s' was specified more than once, but it must be specified at most once.", name)
		}
		q.raw[lname] = vals[0]
	}

	if v, ok := q.raw["$filter"]; ok {
		f, err := parseFilter(v)
		if err != nil {
			return nil, badRequest("%s", err.msg)
		}
		q.filter = f
	}
	q.order = defaultOrder
	if v, ok := q.raw["$orderby"]; ok {
		keys, err := parseOrderBy(v)
		if err != nil {
			return nil, badRequest("%s", err.msg)
		}
		q.order = keys
	}
	var sig []string
	for _, k := range q.order {
		d := " asc"
		if k.desc {
			d = " desc"
		}
		sig = append(sig, strings.Join(k.segs, "/")+d)
	}
	q.orderSig = strings.Join(sig, ",")
	if v, ok := q.raw["$select"]; ok {
		sel, err := parseSelect(v)
		if err != nil {
			return nil, badRequest("%s", err.msg)
		}
		q.sel = sel
	}
	if v, ok := q.raw["$top"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, badRequest("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v)
		}
		if s.topMode() == TopCap {
			q.cap = n
		} else {
			q.top = min(n, maxPageSize)
		}
	}
	if v, ok := q.raw["$skip"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, badRequest("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v)
		}
		q.skip = n
	}
	if v, ok := q.raw["$count"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			q.count = true
		case "false":
		default:
			return nil, badRequest("'%s' is not a valid count option.", v)
		}
	}
	if v, ok := q.raw["$skiptoken"]; ok {
		t, err := decodeSkipToken(v, q)
		if err != nil {
			return nil, err
		}
		q.skipToken = t
	}
	return q, nil
}

// skipToken is the keyset position after the last referral of a page.
type skipToken struct {
	Order string `json:"o"`
	Keys  []any  `json:"k"`
	ID    string `json:"i"`
}

func encodeSkipToken(t skipToken) string {
	return base64.RawURLEncoding.EncodeToString(marshal(t))
}

func decodeSkipToken(v string, q *listQuery) (*skipToken, *apiError) {
	invalid := badRequest("The $skiptoken '%s' is not valid for this query.", v)
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, invalid
	}
	var t skipToken
	if err := json.Unmarshal(raw, &t); err != nil || t.Order != q.orderSig || len(t.Keys) != len(q.order) || t.ID == "" {
		return nil, invalid
	}
	return &t, nil
}

// compareDocs orders two referrals by the query's keys, then by id.
func compareDocs(order []orderKey, a, b map[string]any, idA, idB string) int {
	for _, k := range order {
		c := compareOrder(orderValue(a, k), orderValue(b, k))
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return strings.Compare(idA, idB)
}

// afterToken reports whether a referral sorts strictly after the skip token position.
func afterToken(order []orderKey, doc map[string]any, id string, t *skipToken) bool {
	for i, k := range order {
		tv := fieldValueForKey(t.Keys[i], k)
		c := compareOrder(orderValue(doc, k), tv)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c > 0
		}
	}
	return id > t.ID
}

func fieldValueForKey(raw any, k orderKey) value {
	return orderValue(map[string]any{"k": raw}, orderKey{field: k.field, segs: []string{"k"}})
}

func (s *Server) listReferrals(req *request) (*reply, *apiError) {
	q, err := s.parseListQuery(req.r)
	if err != nil {
		return nil, err
	}
	var matched []*entry
	for _, e := range s.sortedEntries() {
		if q.filter == nil || q.filter.match(e.doc) {
			matched = append(matched, e)
		}
	}
	slices.SortStableFunc(matched, func(a, b *entry) int {
		return compareDocs(q.order, a.doc, b.doc, a.ref.ID, b.ref.ID)
	})
	total := len(matched)

	rest := matched
	if q.skipToken != nil {
		i := 0
		for i < len(rest) && !afterToken(q.order, rest[i].doc, rest[i].ref.ID, q.skipToken) {
			i++
		}
		rest = rest[i:]
	}
	rest = rest[min(q.skip, len(rest)):]
	size := q.top
	if q.cap >= 0 {
		size = min(size, q.cap)
	}
	page := rest[:min(size, len(rest))]
	more := size > 0 && len(rest) > len(page) && (q.cap < 0 || q.cap > len(page))

	var out bytes.Buffer
	ctx := req.base + apiPrefix + "/$metadata#referrals"
	if q.sel != nil {
		ctx += "(" + strings.Join(q.sel.clause(referralSchema, ""), ",") + ")"
	}
	out.WriteString(`{"@odata.context":`)
	out.Write(marshal(ctx))
	if q.count {
		out.WriteString(`,"@odata.count":`)
		out.WriteString(strconv.Itoa(total))
	}
	out.WriteString(`,"value":[`)
	for i, e := range page {
		if i > 0 {
			out.WriteByte(',')
		}
		item := s.render(e.ref, req.base)
		if q.sel != nil {
			item = project(item, q.sel, referralSchema)
		}
		out.Write(item)
	}
	out.WriteByte(']')
	if more {
		last := page[len(page)-1]
		t := skipToken{Order: q.orderSig, ID: last.ref.ID}
		for _, k := range q.order {
			t.Keys = append(t.Keys, lookup(last.doc, k.segs))
		}
		out.WriteString(`,"@odata.nextLink":`)
		out.Write(marshal(nextLink(req, q, encodeSkipToken(t), len(page))))
	}
	out.WriteByte('}')
	return &reply{status: http.StatusOK, header: map[string]string{"Content-Type": odataJSON, "OData-Version": "4.0"}, body: out.Bytes()}, nil
}

// nextLink is the absolute URL of the next page: the same query options, no $skip (already
// applied) and the new $skiptoken; under TopCap, $top is what remains after the served
// referrals.
func nextLink(req *request, q *listQuery, token string, served int) string {
	var parts []string
	for _, name := range knownOptions {
		v, ok := q.raw[name]
		if !ok || name == "$skip" || name == "$skiptoken" {
			continue
		}
		if name == "$top" && q.cap >= 0 {
			v = strconv.Itoa(q.cap - served)
		}
		parts = append(parts, name+"="+queryEscape(v))
	}
	parts = append(parts, "$skiptoken="+token)
	return req.base + apiPrefix + "/referrals?" + strings.Join(parts, "&")
}

// queryEscape percent-encodes a query option value, leaving the characters OData
// expressions are made of (/ , ' : ( ) $ and friends) readable.
func queryEscape(v string) string {
	const keep = "-._~/,':$()!*@"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// project applies a $select to a rendered referral, keeping the model's property order.
// Selected properties that are absent are written as null.
func project(raw []byte, sel selection, node *schemaNode) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return []byte("null")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	first := true
	for _, c := range node.children {
		sub, ok := sel[c.name]
		if !ok {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		out.Write(marshal(c.name))
		out.WriteByte(':')
		v, present := obj[c.name]
		switch {
		case !present:
			out.WriteString("null")
		case sub == nil:
			out.Write(v)
		default:
			out.Write(project(v, sub, c))
		}
	}
	out.WriteByte('}')
	return out.Bytes()
}
