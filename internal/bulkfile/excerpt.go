package bulkfile

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ExcerptRunes is the most runes of input content one error message quotes.
const ExcerptRunes = 80

// Excerpt quotes content read from an input (a cell, a column name, a key,
// a sheet or part name) for an error message: at most ExcerptRunes runes,
// in double quotes, with quotes, control and other non-printable
// characters and invalid UTF-8 escaped as in Go (\n, \x00, \u202e), and
// "…" after the closing quote when the content was cut. Every message that
// repeats input content goes through it, so an error never carries more
// than a short, inert excerpt of what was read.
func Excerpt(s string) string {
	return excerpt(s, ExcerptRunes, true)
}

// ExcerptError is an error's text for a message, when the error may repeat
// input content (a zip or XML library's error, a parse error): escaped like
// Excerpt, unquoted, at most 2×ExcerptRunes runes.
func ExcerptError(err error) string {
	return excerpt(err.Error(), 2*ExcerptRunes, false)
}

func errText(err error) string { return ExcerptError(err) }

// excerpt is the one implementation behind Excerpt and ExcerptError.
func excerpt(s string, maxRunes int, quote bool) string {
	cut := false
	n := 0
	for i := range s {
		if n == maxRunes {
			s, cut = s[:i], true
			break
		}
		n++
	}
	var out string
	if quote {
		out = strconv.Quote(s)
	} else {
		out = escapeUnquoted(s)
	}
	if cut {
		out += "…"
	}
	return out
}

// escapeUnquoted escapes what strconv.Quote would, leaving '"' and '\' as they are.
func escapeUnquoted(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			q := strconv.Quote(s[:size])
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}
