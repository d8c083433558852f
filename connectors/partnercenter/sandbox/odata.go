package sandbox

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file implements the OData v4 query subset the referrals endpoint accepts: a $filter
// tokenizer, recursive-descent parser and evaluator over the referral JSON, $orderby and
// $select. See the package documentation for the exact grammar.

// queryError is a malformed query option; it becomes a 400.
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

func syntaxErr(src string, pos int, format string, args ...any) *queryError {
	return &queryError{msg: fmt.Sprintf("The query specified in the URI is not valid. %s at position %d in '%s'.",
		fmt.Sprintf(format, args...), pos, src)}
}

// Tokens

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokDateTime
	tokGUID
	tokLParen
	tokRParen
	tokComma
	tokSlash
	tokColon // only appears in lambda expressions, which are not supported
)

type token struct {
	kind tokKind
	pos  int
	text string    // identifier or raw text
	str  string    // decoded string literal, GUID
	num  float64   // number literal
	tm   time.Time // date-time literal
}

var (
	guidLitRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	dateLitRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:\d{2})?)?`)
	numLitRE  = regexp.MustCompile(`^-?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?`)
)

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func tokenize(src string) ([]token, *queryError) {
	var toks []token
	i := 0
	for {
		for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
			i++
		}
		if i >= len(src) {
			return append(toks, token{kind: tokEOF, pos: i}), nil
		}
		start := i
		c := src[i]
		rest := src[i:]
		switch {
		case c == '(':
			toks = append(toks, token{kind: tokLParen, pos: i, text: "("})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, pos: i, text: ")"})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, pos: i, text: ","})
			i++
		case c == '/':
			toks = append(toks, token{kind: tokSlash, pos: i, text: "/"})
			i++
		case c == ':':
			toks = append(toks, token{kind: tokColon, pos: i, text: ":"})
			i++
		case c == '\'':
			s, n, err := readString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, pos: start, text: src[start:n], str: s})
			i = n
		case endsLiteral(rest, guidLitRE):
			m := guidLitRE.FindString(rest)
			toks = append(toks, token{kind: tokGUID, pos: start, text: m, str: strings.ToLower(m)})
			i += len(m)
		case endsLiteral(rest, dateLitRE):
			m := dateLitRE.FindString(rest)
			t, ok := parseTime(m)
			if !ok {
				return nil, syntaxErr(src, start, "Invalid date-time literal '%s'", m)
			}
			toks = append(toks, token{kind: tokDateTime, pos: start, text: m, tm: t})
			i += len(m)
		case endsLiteral(rest, numLitRE):
			m := numLitRE.FindString(rest)
			f, err := strconv.ParseFloat(m, 64)
			if err != nil {
				return nil, syntaxErr(src, start, "Invalid number '%s'", m)
			}
			toks = append(toks, token{kind: tokNumber, pos: start, text: m, num: f})
			i += len(m)
		case isIdentStart(c):
			for i < len(src) && isIdentChar(src[i]) {
				i++
			}
			word := src[start:i]
			if i < len(src) && src[i] == '\'' {
				// Typed literal: datetime'…', datetimeoffset'…', date'…', guid'…'.
				s, n, err := readString(src, i)
				if err != nil {
					return nil, err
				}
				switch strings.ToLower(word) {
				case "datetime", "datetimeoffset", "date":
					t, ok := parseTime(s)
					if !ok {
						return nil, syntaxErr(src, start, "Invalid date-time literal %s", src[start:n])
					}
					toks = append(toks, token{kind: tokDateTime, pos: start, text: src[start:n], tm: t})
				case "guid":
					if !guidRE.MatchString(s) {
						return nil, syntaxErr(src, start, "Invalid GUID literal %s", src[start:n])
					}
					toks = append(toks, token{kind: tokGUID, pos: start, text: src[start:n], str: strings.ToLower(s)})
				default:
					return nil, syntaxErr(src, start, "Unrecognized literal type '%s'", word)
				}
				i = n
				continue
			}
			toks = append(toks, token{kind: tokIdent, pos: start, text: word})
		default:
			return nil, syntaxErr(src, start, "Unexpected character '%c'", c)
		}
	}
}

// endsLiteral reports whether re matches at the start of s and the match is not immediately
// followed by an identifier character (so "2026abc" is not a number followed by a name).
func endsLiteral(s string, re *regexp.Regexp) bool {
	m := re.FindString(s)
	if m == "" {
		return false
	}
	return len(m) == len(s) || !isIdentChar(s[len(m)]) && s[len(m)] != '.'
}

// readString decodes the single-quoted literal starting at src[i] (” is an escaped quote).
func readString(src string, i int) (string, int, *queryError) {
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		if src[j] == '\'' {
			if j+1 < len(src) && src[j+1] == '\'' {
				b.WriteByte('\'')
				j += 2
				continue
			}
			return b.String(), j + 1, nil
		}
		b.WriteByte(src[j])
		j++
	}
	return "", 0, syntaxErr(src, i, "Unterminated string literal")
}

// AST

type valType int

const (
	vString valType = iota
	vNumber
	vBool
	vTime
	vNull
	vObject // a complex property; only comparable with null
)

func (t valType) String() string {
	return [...]string{"Edm.String", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset", "null", "complex type"}[t]
}

type value struct {
	t    valType
	null bool
	s    string
	n    float64
	b    bool
	tm   time.Time
	fold bool
}

type exprKind int

const (
	exLiteral exprKind = iota
	exField
	exOr
	exAnd
	exNot
	exCompare
	exIn
	exCall
)

type expr struct {
	kind  exprKind
	pos   int
	t     valType // static type of the result
	fold  bool    // string result compares case-insensitively
	op    string  // comparison operator or function name
	args  []*expr
	lit   value
	segs  []string // field path, canonical names
	field *schemaNode
}

// filter is a parsed $filter.
type filter struct{ root *expr }

type parser struct {
	src  string
	toks []token
	i    int
}

func parseFilter(src string) (*filter, *queryError) {
	if strings.TrimSpace(src) == "" {
		return nil, syntaxErr(src, 0, "Expression expected")
	}
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, syntaxErr(src, t.pos, "Unexpected '%s'", t.text)
	}
	if root.t != vBool {
		return nil, syntaxErr(src, root.pos, "The $filter expression must evaluate to a boolean, not %s", root.t)
	}
	return &filter{root: root}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(words ...string) (string, bool) {
	t := p.peek()
	if t.kind != tokIdent {
		return "", false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			return w, true
		}
	}
	return "", false
}

func (p *parser) describe(t token) string {
	if t.kind == tokEOF {
		return "end of input"
	}
	return "'" + t.text + "'"
}

func (p *parser) parseOr() (*expr, *queryError) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("or"); !ok {
			return left, nil
		}
		opTok := p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if err := p.wantBool(left, right, opTok); err != nil {
			return nil, err
		}
		left = &expr{kind: exOr, pos: opTok.pos, t: vBool, args: []*expr{left, right}}
	}
}

func (p *parser) parseAnd() (*expr, *queryError) {
	left, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("and"); !ok {
			return left, nil
		}
		opTok := p.next()
		right, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		if err := p.wantBool(left, right, opTok); err != nil {
			return nil, err
		}
		left = &expr{kind: exAnd, pos: opTok.pos, t: vBool, args: []*expr{left, right}}
	}
}

func (p *parser) wantBool(left, right *expr, op token) *queryError {
	for _, e := range []*expr{left, right} {
		if e.t != vBool && e.t != vNull {
			return syntaxErr(p.src, e.pos, "The operand of '%s' must be a boolean, not %s", op.text, e.t)
		}
	}
	return nil
}

// parseNot: 'not' applies to the comparison that follows it, so `not status eq 'New'` means
// `not (status eq 'New')`.
func (p *parser) parseNot() (*expr, *queryError) {
	if _, ok := p.keyword("not"); ok {
		notTok := p.next()
		inner, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		if inner.t != vBool && inner.t != vNull {
			return nil, syntaxErr(p.src, inner.pos, "The operand of 'not' must be a boolean, not %s", inner.t)
		}
		return &expr{kind: exNot, pos: notTok.pos, t: vBool, args: []*expr{inner}}, nil
	}
	return p.parseCompare()
}

var compareOps = []string{"eq", "ne", "gt", "ge", "lt", "le", "in"}

func (p *parser) parseCompare() (*expr, *queryError) {
	left, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	op, ok := p.keyword(compareOps...)
	if !ok {
		if left.t == vObject {
			return nil, syntaxErr(p.src, left.pos, "The property '%s' is a complex type and can only be compared with null", left.field.path)
		}
		return left, nil
	}
	opTok := p.next()
	if op == "in" {
		return p.parseIn(left, opTok)
	}
	right, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if err := p.checkComparable(left, right, op, opTok); err != nil {
		return nil, err
	}
	return &expr{kind: exCompare, pos: opTok.pos, t: vBool, op: op, args: []*expr{left, right}}, nil
}

func (p *parser) parseIn(left *expr, opTok token) (*expr, *queryError) {
	if t := p.next(); t.kind != tokLParen {
		return nil, syntaxErr(p.src, t.pos, "'(' expected after 'in' but found %s", p.describe(t))
	}
	e := &expr{kind: exIn, pos: opTok.pos, t: vBool, args: []*expr{left}}
	for {
		item, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if item.kind != exLiteral {
			return nil, syntaxErr(p.src, item.pos, "Only literals are allowed in the list of 'in'")
		}
		if err := p.checkComparable(left, item, "eq", opTok); err != nil {
			return nil, err
		}
		e.args = append(e.args, item)
		t := p.next()
		if t.kind == tokRParen {
			return e, nil
		}
		if t.kind != tokComma {
			return nil, syntaxErr(p.src, t.pos, "',' or ')' expected but found %s", p.describe(t))
		}
	}
}

// checkComparable type-checks a binary comparison. A quoted string compared with a date-time
// property is converted to a date-time literal here.
func (p *parser) checkComparable(left, right *expr, op string, opTok token) *queryError {
	for _, e := range []*expr{left, right} {
		if e.t == vObject && right.t != vNull && left.t != vNull {
			return syntaxErr(p.src, e.pos, "The property '%s' is a complex type and can only be compared with null", e.field.path)
		}
	}
	if left.t == vObject || right.t == vObject {
		if op != "eq" && op != "ne" {
			return syntaxErr(p.src, opTok.pos, "Operator '%s' cannot be applied to a complex type", op)
		}
		return nil
	}
	if left.t == vNull || right.t == vNull || left.t == right.t {
		return nil
	}
	for _, pair := range [][2]*expr{{left, right}, {right, left}} {
		a, b := pair[0], pair[1]
		if a.t == vTime && b.t == vString && b.kind == exLiteral {
			t, ok := parseTime(b.lit.s)
			if !ok {
				return syntaxErr(p.src, b.pos, "The string '%s' is not a valid date-time", b.lit.s)
			}
			b.t, b.lit = vTime, value{t: vTime, tm: t}
			return nil
		}
	}
	return syntaxErr(p.src, opTok.pos, "A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator '%s'",
		left.t, right.t, op)
}

var functions = map[string]struct {
	args   int
	result valType
}{
	"contains":   {2, vBool},
	"startswith": {2, vBool},
	"endswith":   {2, vBool},
	"tolower":    {1, vString},
	"toupper":    {1, vString},
}

func (p *parser) parsePrimary() (*expr, *queryError) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, syntaxErr(p.src, c.pos, "')' expected but found %s", p.describe(c))
		}
		return inner, nil
	case tokString:
		return &expr{kind: exLiteral, pos: t.pos, t: vString, lit: value{t: vString, s: t.str}}, nil
	case tokGUID:
		return &expr{kind: exLiteral, pos: t.pos, t: vString, fold: true, lit: value{t: vString, s: t.str, fold: true}}, nil
	case tokNumber:
		return &expr{kind: exLiteral, pos: t.pos, t: vNumber, lit: value{t: vNumber, n: t.num}}, nil
	case tokDateTime:
		return &expr{kind: exLiteral, pos: t.pos, t: vTime, lit: value{t: vTime, tm: t.tm}}, nil
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "true", "false":
			b := strings.EqualFold(t.text, "true")
			return &expr{kind: exLiteral, pos: t.pos, t: vBool, lit: value{t: vBool, b: b}}, nil
		case "null":
			return &expr{kind: exLiteral, pos: t.pos, t: vNull, lit: value{t: vNull, null: true}}, nil
		}
		if p.peek().kind == tokLParen {
			return p.parseCall(t)
		}
		return p.parseField(t)
	}
	return nil, syntaxErr(p.src, t.pos, "Expression expected but found %s", p.describe(t))
}

func (p *parser) parseCall(name token) (*expr, *queryError) {
	fname := strings.ToLower(name.text)
	fn, ok := functions[fname]
	if !ok {
		return nil, syntaxErr(p.src, name.pos, "Unknown function '%s'", name.text)
	}
	p.next() // (
	e := &expr{kind: exCall, pos: name.pos, t: fn.result, op: fname}
	if p.peek().kind != tokRParen {
		for {
			arg, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			e.args = append(e.args, arg)
			if p.peek().kind != tokComma {
				break
			}
			p.next()
		}
	}
	if c := p.next(); c.kind != tokRParen {
		return nil, syntaxErr(p.src, c.pos, "')' or ',' expected but found %s", p.describe(c))
	}
	if len(e.args) != fn.args {
		return nil, syntaxErr(p.src, name.pos, "The function '%s' takes %d argument(s), not %d", fname, fn.args, len(e.args))
	}
	for _, a := range e.args {
		if a.t != vString && a.t != vNull {
			return nil, syntaxErr(p.src, a.pos, "The function '%s' requires string arguments, not %s", fname, a.t)
		}
		if a.fold && fn.result == vBool {
			e.fold = true
		}
	}
	if fn.result == vString {
		e.fold = false
	}
	return e, nil
}

func (p *parser) parseField(first token) (*expr, *queryError) {
	node := referralSchema
	var segs []string
	t := first
	for {
		c := node.child(t.text)
		if c == nil {
			where := "Referral"
			if node.path != "" {
				where = node.path
			}
			return nil, syntaxErr(p.src, t.pos, "Could not find a property named '%s' on '%s'", t.text, where)
		}
		segs = append(segs, c.name)
		node = c
		if p.peek().kind != tokSlash {
			break
		}
		slash := p.next()
		if node.kind == kindArray {
			return nil, syntaxErr(p.src, slash.pos, "The property '%s' is a collection; lambda operators are not supported", node.path)
		}
		if node.kind != kindObject || node.byLower == nil {
			return nil, syntaxErr(p.src, slash.pos, "The property '%s' has no nested properties", node.path)
		}
		t = p.next()
		if t.kind != tokIdent {
			return nil, syntaxErr(p.src, t.pos, "Property name expected after '/' but found %s", p.describe(t))
		}
	}
	e := &expr{kind: exField, pos: first.pos, segs: segs, field: node, fold: node.fold}
	switch node.kind {
	case kindString:
		e.t = vString
	case kindNumber:
		e.t = vNumber
	case kindBool:
		e.t = vBool
	case kindDateTime:
		e.t = vTime
	case kindObject:
		e.t = vObject
	case kindArray:
		return nil, syntaxErr(p.src, first.pos, "The property '%s' is a collection and cannot be used in a comparison", node.path)
	}
	return e, nil
}

// Evaluation

func (f *filter) match(doc map[string]any) bool {
	v := f.root.eval(doc)
	return v.t == vBool && !v.null && v.b
}

func nullValue() value { return value{t: vNull, null: true} }

func boolValue(b bool) value { return value{t: vBool, b: b} }

func (e *expr) eval(doc map[string]any) value {
	switch e.kind {
	case exLiteral:
		return e.lit
	case exField:
		return fieldValue(lookup(doc, e.segs), e.t, e.fold)
	case exOr:
		a, b := e.args[0].eval(doc), e.args[1].eval(doc)
		return boolValue(truthy(a) || truthy(b))
	case exAnd:
		a, b := e.args[0].eval(doc), e.args[1].eval(doc)
		return boolValue(truthy(a) && truthy(b))
	case exNot:
		v := e.args[0].eval(doc)
		if v.null {
			return nullValue()
		}
		return boolValue(!v.b)
	case exCompare:
		return boolValue(compareValues(e.op, e.args[0].eval(doc), e.args[1].eval(doc)))
	case exIn:
		left := e.args[0].eval(doc)
		for _, item := range e.args[1:] {
			if compareValues("eq", left, item.eval(doc)) {
				return boolValue(true)
			}
		}
		return boolValue(false)
	case exCall:
		return e.call(doc)
	}
	return nullValue()
}

func truthy(v value) bool { return v.t == vBool && !v.null && v.b }

func fieldValue(raw any, t valType, fold bool) value {
	if raw == nil {
		return nullValue()
	}
	switch t {
	case vString:
		if s, ok := raw.(string); ok {
			return value{t: vString, s: s, fold: fold}
		}
	case vNumber:
		if n, ok := raw.(float64); ok {
			return value{t: vNumber, n: n}
		}
	case vBool:
		if b, ok := raw.(bool); ok {
			return value{t: vBool, b: b}
		}
	case vTime:
		if s, ok := raw.(string); ok {
			if tm, ok := parseTime(s); ok {
				return value{t: vTime, tm: tm}
			}
		}
	case vObject:
		return value{t: vObject}
	}
	return nullValue()
}

func (e *expr) call(doc map[string]any) value {
	args := make([]value, len(e.args))
	for i, a := range e.args {
		args[i] = a.eval(doc)
	}
	switch e.op {
	case "tolower", "toupper":
		if args[0].null {
			return nullValue()
		}
		if e.op == "tolower" {
			return value{t: vString, s: strings.ToLower(args[0].s)}
		}
		return value{t: vString, s: strings.ToUpper(args[0].s)}
	}
	if args[0].null || args[1].null {
		return boolValue(false)
	}
	a, b := args[0].s, args[1].s
	if e.fold {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	switch e.op {
	case "contains":
		return boolValue(strings.Contains(a, b))
	case "startswith":
		return boolValue(strings.HasPrefix(a, b))
	default: // endswith
		return boolValue(strings.HasSuffix(a, b))
	}
}

// compareValues applies a comparison operator with OData null semantics: null equals only
// null, and ordering comparisons involving null are false.
func compareValues(op string, a, b value) bool {
	if a.null || b.null || a.t == vObject || b.t == vObject {
		bothNull := (a.null || a.t == vNull) && (b.null || b.t == vNull)
		switch op {
		case "eq":
			return bothNull
		case "ne":
			return !bothNull
		}
		return false
	}
	c := compareScalar(a, b)
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	default: // le
		return c <= 0
	}
}

func compareScalar(a, b value) int {
	switch a.t {
	case vString:
		x, y := a.s, b.s
		if a.fold || b.fold {
			x, y = strings.ToLower(x), strings.ToLower(y)
		}
		return strings.Compare(x, y)
	case vNumber:
		switch {
		case a.n < b.n:
			return -1
		case a.n > b.n:
			return 1
		}
		return 0
	case vBool:
		switch {
		case a.b == b.b:
			return 0
		case !a.b:
			return -1
		}
		return 1
	case vTime:
		return a.tm.Compare(b.tm)
	}
	return 0
}

// $orderby

type orderKey struct {
	field *schemaNode
	segs  []string
	desc  bool
}

// defaultOrder is the order of a list without $orderby: newest first.
var defaultOrder = []orderKey{mustOrderKey("createdDateTime", true)}

func mustOrderKey(path string, desc bool) orderKey {
	k, err := resolveOrderPath(path, path, 0)
	if err != nil {
		panic(err)
	}
	k.desc = desc
	return k
}

func parseOrderBy(src string) ([]orderKey, *queryError) {
	var keys []orderKey
	base := 0
	for item := range strings.SplitSeq(src, ",") {
		fields := strings.Fields(item)
		itemPos := base + len(item) - len(strings.TrimLeft(item, " \t"))
		if len(fields) == 0 || len(fields) > 2 {
			return nil, syntaxErr(src, itemPos, "Invalid $orderby item '%s'", strings.TrimSpace(item))
		}
		k, err := resolveOrderPath(src, fields[0], itemPos)
		if err != nil {
			return nil, err
		}
		if len(fields) == 2 {
			switch strings.ToLower(fields[1]) {
			case "asc":
			case "desc":
				k.desc = true
			default:
				return nil, syntaxErr(src, base+strings.LastIndex(item, fields[1]),
					"Expected 'asc' or 'desc' but found '%s'", fields[1])
			}
		}
		keys = append(keys, k)
		base += len(item) + 1
	}
	return keys, nil
}

func resolveOrderPath(src, path string, pos int) (orderKey, *queryError) {
	node := referralSchema
	var segs []string
	off := pos
	for seg := range strings.SplitSeq(path, "/") {
		c := node.child(seg)
		if c == nil {
			where := "Referral"
			if node.path != "" {
				where = node.path
			}
			return orderKey{}, syntaxErr(src, off, "Could not find a property named '%s' on '%s'", seg, where)
		}
		segs = append(segs, c.name)
		node = c
		off += len(seg) + 1
	}
	if node.kind == kindObject || node.kind == kindArray {
		return orderKey{}, syntaxErr(src, pos, "The property '%s' is a %s and cannot be used in $orderby", node.path, node.kind)
	}
	return orderKey{field: node, segs: segs}, nil
}

// orderValue extracts a sort key value as a comparable value (null when absent).
func orderValue(doc map[string]any, k orderKey) value {
	var t valType
	switch k.field.kind {
	case kindString:
		t = vString
	case kindNumber:
		t = vNumber
	case kindBool:
		t = vBool
	default:
		t = vTime
	}
	return fieldValue(lookup(doc, k.segs), t, k.field.fold)
}

// compareOrder orders two values ascending, nulls first.
func compareOrder(a, b value) int {
	switch {
	case a.null && b.null:
		return 0
	case a.null:
		return -1
	case b.null:
		return 1
	}
	return compareScalar(a, b)
}

// $select

// selection is a projection tree: a nil selection selects a whole value.
type selection map[string]selection

func parseSelect(src string) (selection, *queryError) {
	sel := selection{}
	pos := 0
	for item := range strings.SplitSeq(src, ",") {
		itemPos := pos + len(item) - len(strings.TrimLeft(item, " "))
		pos += len(item) + 1
		path := strings.TrimSpace(item)
		if path == "" {
			return nil, syntaxErr(src, itemPos, "Property name expected in $select")
		}
		if path == "*" {
			return nil, nil
		}
		// Resolve the whole path first, then merge it into the tree.
		node := referralSchema
		var names []string
		off := itemPos
		segs := strings.Split(path, "/")
		for i, seg := range segs {
			c := node.child(seg)
			if c == nil {
				where := "Referral"
				if node.path != "" {
					where = node.path
				}
				return nil, syntaxErr(src, off, "Could not find a property named '%s' on '%s'", seg, where)
			}
			if i < len(segs)-1 && (c.kind != kindObject || c.byLower == nil) {
				return nil, syntaxErr(src, off, "The property '%s' has no nested properties to select", c.path)
			}
			names = append(names, c.name)
			node = c
			off += len(seg) + 1
		}
		cur := sel
		for i, n := range names {
			sub, seen := cur[n]
			if i == len(names)-1 {
				cur[n] = nil // a whole value wins over a partial selection
				break
			}
			if seen && sub == nil {
				break // already selected whole
			}
			if !seen {
				sub = selection{}
				cur[n] = sub
			}
			cur = sub
		}
	}
	return sel, nil
}

// clause renders a selection for @odata.context, e.g. "id,status,customerProfile/name".
func (sel selection) clause(node *schemaNode, prefix string) []string {
	var out []string
	for _, c := range node.children {
		sub, ok := sel[c.name]
		if !ok {
			continue
		}
		if sub == nil {
			out = append(out, prefix+c.name)
			continue
		}
		out = append(out, sub.clause(c, prefix+c.name+"/")...)
	}
	return out
}
