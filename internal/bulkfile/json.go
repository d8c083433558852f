package bulkfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// scanJSON streams a JSON array of flat objects token by token.
func scanJSON(lr *limitReader, s *scanner) (Summary, error) {
	br := bufio.NewReaderSize(lr, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	j := &jsonScan{s: s, dec: json.NewDecoder(br), colIndex: map[string]struct{}{}}
	j.dec.UseNumber()
	err := j.scan()
	sum := Summary{Rows: j.rows, Columns: j.columns}
	if err != nil && !errors.Is(err, errStop) {
		return sum, err
	}
	if !s.stop && j.rows == 0 && len(s.problems) == 0 {
		s.add(Problem{Message: "the JSON array is empty"})
	}
	return sum, nil
}

// errStop ends scanning after a problem that leaves the stream unusable.
var errStop = errors.New("stop")

type jsonScan struct {
	s        *scanner
	dec      *json.Decoder
	rows     int // elements seen
	columns  []string
	colIndex map[string]struct{}
	keys     map[string]struct{} // keys of the current object
	obj      bytes.Buffer
	str      bytes.Buffer
	enc      *json.Encoder
}

// token reads the next token and turns decoding failures into problems
// (errStop) and I/O failures into errors.
func (j *jsonScan) token(row int) (json.Token, error) {
	tok, err := j.dec.Token()
	if err == nil {
		return tok, nil
	}
	return nil, j.fail(row, err)
}

// fail turns a decoding failure into a problem (errStop) and returns other
// errors as they are.
func (j *jsonScan) fail(row int, err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		j.s.tooLarge()
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		j.s.fatal(Problem{Row: row, Message: "the JSON ends unexpectedly (truncated file?)"})
	default:
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			return err
		}
		j.s.fatal(Problem{Row: row, Message: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, errText(se))})
	}
	return errStop
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' || v == '}' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func (j *jsonScan) scan() error {
	tok, err := j.dec.Token()
	if err == io.EOF {
		j.s.fatal(Problem{Message: "the file is empty"})
		return nil
	}
	if err != nil {
		return j.fail(0, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		j.s.fatal(Problem{Message: fmt.Sprintf("expected a JSON array of objects, found %s", describe(tok))})
		return nil
	}
	for !j.s.stop && j.dec.More() {
		row := j.rows + 1
		if j.rows >= j.s.opt.MaxRows {
			j.s.tooManyRows(row)
			return nil
		}
		j.rows++
		tok, err := j.token(row)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			j.s.add(Problem{Row: row, Message: fmt.Sprintf("expected an object, found %s", describe(tok))})
			if ok {
				if err := j.skip(row); err != nil {
					return err
				}
			}
			continue
		}
		if err := j.object(row); err != nil {
			return err
		}
	}
	if j.s.stop {
		return nil
	}
	if _, err := j.token(j.rows); err != nil { // closing ']'
		return err
	}
	if _, err := j.dec.Token(); err != io.EOF {
		if errors.Is(err, errTooLarge) {
			j.s.tooLarge()
			return nil
		}
		j.s.add(Problem{Message: "unexpected data after the JSON array"})
	}
	return nil
}

// skip consumes the rest of a nested value whose opening delimiter was read.
func (j *jsonScan) skip(row int) error {
	for depth := 1; depth > 0; {
		tok, err := j.token(row)
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '[', '{':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

func (j *jsonScan) object(row int) error {
	split := j.s.splitting()
	if split {
		j.obj.Reset()
		j.obj.WriteByte('{')
	}
	if j.keys == nil {
		j.keys = map[string]struct{}{}
	}
	clear(j.keys)
	n := 0
	for j.dec.More() {
		ktok, err := j.token(row)
		if err != nil {
			return err
		}
		key, _ := ktok.(string) // the decoder guarantees object keys are strings
		vtok, err := j.token(row)
		if err != nil {
			return err
		}
		if key == "" {
			j.s.add(Problem{Row: row, Message: "empty key"})
		} else if _, dup := j.keys[key]; dup {
			j.s.add(Problem{Row: row, Column: key, Message: "duplicate key in the object"})
		} else {
			j.keys[key] = struct{}{}
		}
		if _, known := j.colIndex[key]; !known && key != "" {
			j.colIndex[key] = struct{}{}
			j.columns = append(j.columns, key)
		}
		if d, ok := vtok.(json.Delim); ok {
			j.s.add(Problem{Row: row, Column: key, Message: fmt.Sprintf("value is %s: values must be strings, numbers, booleans or null (no nested objects or arrays)", describe(d))})
			if err := j.skip(row); err != nil {
				return err
			}
			continue
		}
		if split = split && j.s.splitting(); split {
			if n > 0 {
				j.obj.WriteByte(',')
			}
			j.writeString(key)
			j.obj.WriteByte(':')
			j.writeValue(vtok)
		}
		n++
	}
	if _, err := j.token(row); err != nil { // closing '}'
		return err
	}
	if split && j.s.splitting() {
		j.obj.WriteByte('}')
		return j.s.ch.addObject(row, j.obj.Bytes())
	}
	return nil
}

func (j *jsonScan) writeString(v string) {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.str)
		j.enc.SetEscapeHTML(false)
	}
	j.str.Reset()
	_ = j.enc.Encode(v) // encoding a string cannot fail
	j.obj.Write(bytes.TrimSuffix(j.str.Bytes(), []byte{'\n'}))
}

func (j *jsonScan) writeValue(tok json.Token) {
	switch v := tok.(type) {
	case string:
		j.writeString(v)
	case json.Number:
		j.obj.WriteString(v.String())
	case bool:
		j.obj.WriteString(strconv.FormatBool(v))
	case nil:
		j.obj.WriteString("null")
	}
}
