package sandbox

// # Subscriber filters
//
// The filters of a subscriber narrow the object events it receives. The syntax follows the
// example of the API documentation, (stage in [ "closed", "won", "lost" ]) AND
// (sales_details.partner = "P1"):
//
//	expr      := and { OR and }
//	and       := unary { AND unary }
//	unary     := NOT unary | "(" expr ")" | condition
//	condition := field ( "=" | "==" | "!=" ) value
//	           | field [NOT] IN "[" [ value { "," value } ] "]"
//	value     := "double quoted" | 'single quoted' | bare word (a number, true, …)
//
// Keywords (AND, OR, NOT, IN) are case-insensitive; AND binds tighter than OR. A field is a
// dotted path. It is looked up case-insensitively among the fields of the event payload
// (name, stage, partner, amount, crm_opportunity_id, …), the object's external ids by their
// WorkSpan field name (sales_details.crm_opportunity_id, partner_center.referral_id, …),
// partner_center.integration_status and the custom fields of a bulk load; failing that, by
// its last segment, so sales_details.partner means partner. An unknown field has the empty
// value. Values compare case-insensitively, and as numbers when both sides are numbers
// (amount = 125000 matches an amount of 125000.0). A blank filter matches everything; a
// filter that does not parse is rejected at subscribe time with 400.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxFilterLen   = 4096
	maxFilterDepth = 64
)

// filterExpr is a parsed subscriber filter.
type filterExpr interface {
	eval(lookup func(field string) string) bool
}

type filterAnd struct{ l, r filterExpr }
type filterOr struct{ l, r filterExpr }
type filterNot struct{ x filterExpr }

// filterCond is a comparison of a field with one value (=, !=) or a list (in, not in).
type filterCond struct {
	field  string
	values []string
	negate bool
}

func (f filterAnd) eval(lookup func(string) string) bool { return f.l.eval(lookup) && f.r.eval(lookup) }
func (f filterOr) eval(lookup func(string) string) bool  { return f.l.eval(lookup) || f.r.eval(lookup) }
func (f filterNot) eval(lookup func(string) string) bool { return !f.x.eval(lookup) }

func (f filterCond) eval(lookup func(string) string) bool {
	v := lookup(f.field)
	found := false
	for _, want := range f.values {
		if filterValueEqual(v, want) {
			found = true
			break
		}
	}
	return found != f.negate
}

func filterValueEqual(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if strings.EqualFold(a, b) {
		return true
	}
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	return errA == nil && errB == nil && x == y
}

type filterToken struct {
	kind string // "(", ")", "[", "]", ",", "=", "!=", "str", "word", "eof"
	text string
	pos  int // byte offset, for error messages
}

func lexFilter(src string) ([]filterToken, error) {
	var toks []filterToken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case strings.IndexByte("()[],", c) >= 0:
			toks = append(toks, filterToken{kind: string(c), text: string(c), pos: i})
			i++
		case c == '=':
			n := 1
			if i+1 < len(src) && src[i+1] == '=' {
				n = 2
			}
			toks = append(toks, filterToken{kind: "=", text: src[i : i+n], pos: i})
			i += n
		case c == '!':
			if i+1 >= len(src) || src[i+1] != '=' {
				return nil, fmt.Errorf("unexpected '!' at position %d", i+1)
			}
			toks = append(toks, filterToken{kind: "!=", text: "!=", pos: i})
			i += 2
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(src) {
				if src[j] == '\\' && j+1 < len(src) {
					b.WriteByte(src[j+1])
					j += 2
					continue
				}
				if src[j] == c {
					closed = true
					j++
					break
				}
				b.WriteByte(src[j])
				j++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated string starting at position %d", i+1)
			}
			toks = append(toks, filterToken{kind: "str", text: b.String(), pos: i})
			i = j
		default:
			j := i
			for j < len(src) {
				r, size := utf8.DecodeRuneInString(src[j:])
				if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-+:", r)) {
					break
				}
				j += size
			}
			if j == i {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("unexpected character %q at position %d", r, i+1)
			}
			toks = append(toks, filterToken{kind: "word", text: src[i:j], pos: i})
			i = j
		}
	}
	return append(toks, filterToken{kind: "eof", pos: len(src)}), nil
}

type filterParser struct {
	toks  []filterToken
	i     int
	depth int
}

func (p *filterParser) peek() filterToken { return p.toks[p.i] }

func (p *filterParser) next() filterToken {
	t := p.toks[p.i]
	if t.kind != "eof" {
		p.i++
	}
	return t
}

func (p *filterParser) keyword(name string) bool {
	t := p.peek()
	return t.kind == "word" && strings.EqualFold(t.text, name)
}

func (p *filterParser) errorf(t filterToken, format string, args ...any) error {
	where := fmt.Sprintf("at position %d", t.pos+1)
	if t.kind == "eof" {
		where = "at the end"
	}
	return fmt.Errorf(format+" "+where, args...)
}

func isFilterKeyword(s string) bool {
	switch strings.ToUpper(s) {
	case "AND", "OR", "NOT", "IN":
		return true
	}
	return false
}

func (p *filterParser) expr() (filterExpr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxFilterDepth {
		return nil, p.errorf(p.peek(), "filter nested too deeply")
	}
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		p.next()
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = filterOr{left, right}
	}
	return left, nil
}

func (p *filterParser) and() (filterExpr, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		p.next()
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = filterAnd{left, right}
	}
	return left, nil
}

func (p *filterParser) unary() (filterExpr, error) {
	switch t := p.peek(); {
	case p.keyword("NOT"):
		p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxFilterDepth {
			return nil, p.errorf(t, "filter nested too deeply")
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return filterNot{x}, nil
	case t.kind == "(":
		p.next()
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != ")" {
			return nil, p.errorf(c, "expected ')'")
		}
		return x, nil
	}
	return p.condition()
}

func (p *filterParser) condition() (filterExpr, error) {
	f := p.next()
	if f.kind != "word" || isFilterKeyword(f.text) {
		return nil, p.errorf(f, "expected a field name")
	}
	field := strings.ToLower(f.text)
	switch op := p.next(); {
	case op.kind == "=" || op.kind == "!=":
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return filterCond{field: field, values: []string{v}, negate: op.kind == "!="}, nil
	case op.kind == "word" && strings.EqualFold(op.text, "NOT"):
		if in := p.next(); in.kind != "word" || !strings.EqualFold(in.text, "IN") {
			return nil, p.errorf(in, "expected 'in' after 'not'")
		}
		values, err := p.list()
		if err != nil {
			return nil, err
		}
		return filterCond{field: field, values: values, negate: true}, nil
	case op.kind == "word" && strings.EqualFold(op.text, "IN"):
		values, err := p.list()
		if err != nil {
			return nil, err
		}
		return filterCond{field: field, values: values}, nil
	default:
		return nil, p.errorf(op, "expected '=', '!=' or 'in' after field %s", f.text)
	}
}

func (p *filterParser) list() ([]string, error) {
	if t := p.next(); t.kind != "[" {
		return nil, p.errorf(t, "expected '['")
	}
	values := []string{}
	if p.peek().kind == "]" {
		p.next()
		return values, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		switch t := p.next(); t.kind {
		case ",":
		case "]":
			return values, nil
		default:
			return nil, p.errorf(t, "expected ',' or ']'")
		}
	}
}

func (p *filterParser) value() (string, error) {
	t := p.next()
	if t.kind == "str" || (t.kind == "word" && !isFilterKeyword(t.text)) {
		return t.text, nil
	}
	return "", p.errorf(t, "expected a value")
}

// parseFilter parses a subscriber filter; a blank filter is nil (matches everything).
func parseFilter(src string) (filterExpr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	if len(src) > maxFilterLen {
		return nil, fmt.Errorf("filter longer than %d characters", maxFilterLen)
	}
	toks, err := lexFilter(src)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, p.errorf(t, "unexpected %q", t.text)
	}
	return x, nil
}
