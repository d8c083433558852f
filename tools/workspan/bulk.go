package workspan

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// BulkDataArgs are the arguments of the inline bulk loads.
type BulkDataArgs struct {
	IntegrationID   string `json:"integration_id" jsonschema:"minLength=1"`
	Data            string `json:"data" jsonschema:"minLength=1,maxLength=16777216" jsonschema_description:"CSV text with a header row, or a JSON array of flat objects."`
	Format          string `json:"format,omitempty" jsonschema:"enum=csv,enum=json" jsonschema_description:"Default csv."`
	ColumnDelimiter string `json:"column_delimiter,omitempty" jsonschema:"maxLength=1" jsonschema_description:"CSV delimiter, default comma."`
}

// BulkFileArgs are the arguments of the file bulk loads.
type BulkFileArgs struct {
	IntegrationID   string `json:"integration_id" jsonschema:"minLength=1"`
	Path            string `json:"path,omitempty" jsonschema_description:"File on the server's machine (yours on stdio)."`
	ContentBase64   string `json:"content_base64,omitempty" jsonschema:"maxLength=22369624" jsonschema_description:"The file itself, base64, instead of path."`
	Filename        string `json:"filename,omitempty" jsonschema_description:"Name for base64 content, e.g. deals.xlsx."`
	Format          string `json:"format,omitempty" jsonschema:"enum=xlsx,enum=csv,enum=json" jsonschema_description:"Default from the extension, else xlsx."`
	ColumnDelimiter string `json:"column_delimiter,omitempty" jsonschema:"maxLength=1"`
	HasHeaderRow    *bool  `json:"has_header_row,omitempty" jsonschema_description:"Default true."`
}

// Execution is one upload's bulk execution.
type Execution struct {
	ExecutionID string `json:"execution_id"`
	// FirstRow is the input row (as numbered in the file, header = row 1) the execution starts at.
	FirstRow int `json:"first_row"`
	Rows     int `json:"rows"`
}

// UploadResult is the result of every bulk load tool.
type UploadResult struct {
	IntegrationID string      `json:"integration_id"`
	Format        string      `json:"format"`
	Rows          int         `json:"rows"`
	Columns       []string    `json:"columns"`
	Executions    []Execution `json:"executions"`
	Next          string      `json:"next"`
}

// target says which endpoint family an upload goes to.
type target int

const (
	toData target = iota
	toOpportunities
)

// input is validated, then re-read for upload.
type input struct {
	open     func() (io.ReadCloser, error)
	close    func() // releases the input once the call is over; nil for none
	name     string
	format   bulkfile.Format
	file     bool // came from a file tool (multipart upload)
	noHeader bool
}

func (s *service) bulkLoadData(ctx context.Context, in BulkDataArgs) (UploadResult, error) {
	return s.inline(ctx, toData, in)
}

func (s *service) bulkLoadOpportunities(ctx context.Context, in BulkDataArgs) (UploadResult, error) {
	return s.inline(ctx, toOpportunities, in)
}

func (s *service) bulkLoadDataFile(ctx context.Context, in BulkFileArgs) (UploadResult, error) {
	return s.fromFile(ctx, toData, in)
}

func (s *service) bulkLoadOpportunitiesFile(ctx context.Context, in BulkFileArgs) (UploadResult, error) {
	return s.fromFile(ctx, toOpportunities, in)
}

func (s *service) inline(ctx context.Context, t target, in BulkDataArgs) (UploadResult, error) {
	format := bulkfile.Format(in.Format)
	if format == "" {
		format = bulkfile.FormatCSV
	}
	if int64(len(in.Data)) > s.opts.MaxFileBytes {
		return UploadResult{}, tools.InvalidArgument("data", "data is %d bytes; the limit is %d: use a file tool", len(in.Data), s.opts.MaxFileBytes)
	}
	data := in.Data
	src := input{open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }, name: "data." + string(format), format: format}
	return s.load(ctx, t, in.IntegrationID, in.ColumnDelimiter, src)
}

func (s *service) fromFile(ctx context.Context, t target, in BulkFileArgs) (UploadResult, error) {
	src, err := s.fileInput(ctx, t, in)
	if err != nil {
		return UploadResult{}, err
	}
	if src.close != nil {
		defer src.close()
	}
	return s.load(ctx, t, in.IntegrationID, in.ColumnDelimiter, src)
}

// folders are the folders a path may name, and whether they are the
// default ones of a local user.
type folders struct {
	dirs      []bulkfile.Dir
	byDefault bool
}

// allowedDirs are the folders a path may name: the configured ones, and on
// stdio (Options.ClientRoots) the client's MCP roots; on stdio, when
// neither names a folder, the user's home and the working directory
// without their hidden files and folders (bulkfile.LocalDirs). Over HTTP
// the client's roots describe the client's machine and widen nothing here,
// and there is no default.
func (s *service) allowedDirs(ctx context.Context) folders {
	dirs := bulkfile.Dirs(s.opts.AllowedDirs...)
	if !s.opts.ClientRoots {
		return folders{dirs: dirs}
	}
	dirs = append(dirs, bulkfile.Dirs(tools.ClientRoots(ctx)...)...)
	if len(dirs) > 0 {
		return folders{dirs: dirs}
	}
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	return folders{dirs: bulkfile.LocalDirs(home, wd), byDefault: true}
}

// fileInput opens a path inside the allowed folders, once (every pass reads
// that same open file, never the path again), or decodes base64.
func (s *service) fileInput(ctx context.Context, t target, in BulkFileArgs) (input, error) {
	if (in.Path == "") == (in.ContentBase64 == "") {
		return input{}, tools.InvalidArgument("path", "give exactly one of path or content_base64")
	}
	src := input{file: true, noHeader: in.HasHeaderRow != nil && !*in.HasHeaderRow}
	if in.Path != "" {
		allowed := s.allowedDirs(ctx)
		f, err := bulkfile.OpenInside(in.Path, allowed.dirs)
		if err != nil {
			return input{}, s.pathRefused(t, allowed, err)
		}
		st, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return input{}, tools.InvalidArgument("path", "%v", err)
		}
		if st.Size() > s.opts.MaxFileBytes {
			_ = f.Close()
			return input{}, tools.InvalidArgument("path", "%s is %d bytes; the limit is %d", in.Path, st.Size(), s.opts.MaxFileBytes)
		}
		size := st.Size()
		src.name = filepath.Base(f.Name())
		src.open = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, size)), nil }
		src.close = func() { _ = f.Close() }
	} else {
		if int64(base64.StdEncoding.DecodedLen(len(in.ContentBase64))) > s.opts.MaxFileBytes {
			return input{}, tools.InvalidArgument("content_base64", "content is larger than the %d-byte limit", s.opts.MaxFileBytes)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(in.ContentBase64))
		if err != nil {
			return input{}, tools.InvalidArgument("content_base64", "content_base64 is not valid base64: %v", err)
		}
		src.name = in.Filename
		if src.name == "" {
			src.name = "upload"
		}
		src.open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	src.format = bulkfile.Format(in.Format)
	if src.format == "" {
		if f, ok := bulkfile.DetectFormat(src.name); ok {
			src.format = f
		} else {
			src.format = bulkfile.FormatXLSX
		}
	}
	return src, nil
}

// operatorHint tells whoever runs the server how to open folders to file
// input; it comes after what the caller can do itself.
const operatorHint = "(Operator: --allowed-dirs or COSELL_ALLOWED_DIRS sets the folders files may be read from.)"

// pathRefused words a refused path for the caller: why, which folders are
// allowed, and how to send the content instead (content_base64 here, or
// the text as data to the inline tool), then the operator's hint.
func (s *service) pathRefused(t target, allowed folders, err error) error {
	var pe *bulkfile.PathError
	if !errors.As(err, &pe) {
		return tools.InvalidArgument("path", "%v", err)
	}
	inline := "workspan_bulk_load_data"
	if t == toOpportunities {
		inline = "workspan_bulk_load_opportunities"
	}
	instead := "pass the file itself as content_base64 (with filename), or csv/json text as data to " + inline + "."
	where := "Allowed folders: "
	switch {
	case allowed.byDefault:
		where = "Allowed folders (by default on stdio: your home and the working directory, hidden ones excluded): "
	case !s.opts.ClientRoots:
		where = "Allowed folders (on the server, not your machine): "
	}
	where += strings.Join(pe.Allowed, ", ")
	var msg string
	switch pe.Reason {
	case bulkfile.NoFolders:
		if s.opts.ClientRoots {
			msg = "this server reads no file paths: no folder is allowed for file input. Instead, " + instead + " " + operatorHint
		} else {
			msg = "this server is remote (HTTP) and reads no file paths: a path would name a file on the server, not on your machine. Instead, " +
				instead + " " + operatorHint
		}
	case bulkfile.Outside:
		msg = pe.Why() + ". " + where + ". Give a path inside one of them, or " + instead + " " + operatorHint
	case bulkfile.Hidden:
		msg = pe.Why() + ", and such files (~/.ssh, ~/.aws, ~/.config, .env…) are never read from the default folders. " +
			where + ". Copy the file to a visible folder, or " + instead + " " + operatorHint
	case bulkfile.Missing:
		msg = pe.Why() + ". " + where
		if wd, err := os.Getwd(); err == nil && s.opts.ClientRoots {
			msg += "; a relative path starts at " + wd
		}
		msg += ". Check the path, or " + instead
	default:
		msg = pe.Why() + ". Instead, " + instead
	}
	return tools.InvalidArgument("path", "%s", msg)
}

// load validates the whole input locally, then uploads it in one execution,
// or in several of at most RowsPerUpload rows each. Each upload is sent
// once; the first that fails stops the load (no further chunk is sent) and
// the error says what landed and where to resume (stopped).
func (s *service) load(ctx context.Context, t target, integrationID, delimiter string, src input) (UploadResult, error) {
	opt := bulkfile.Options{Format: src.format, NoHeader: src.noHeader, MaxBytes: s.opts.MaxFileBytes}
	if delimiter != "" {
		if src.format != bulkfile.FormatCSV {
			return UploadResult{}, tools.InvalidArgument("column_delimiter", "column_delimiter applies to csv only, not %s", bulkfile.Excerpt(string(src.format)))
		}
		d, err := bulkfile.ParseDelimiter(delimiter)
		if err != nil {
			return UploadResult{}, tools.InvalidArgument("column_delimiter", "%v", err)
		}
		opt.Delimiter = d
	}
	field := "data"
	if src.file {
		field = "path"
	}
	sum, err := withReader(src, func(r io.Reader) (bulkfile.Summary, error) { return bulkfile.Validate(r, opt) })
	if err != nil {
		return UploadResult{}, inputError(field, src.name, err)
	}
	out := UploadResult{IntegrationID: integrationID, Format: string(src.format), Rows: sum.Rows, Columns: sum.Columns, Executions: []Execution{}}
	first := 2 // below the header row
	if src.format == bulkfile.FormatJSON || src.noHeader {
		first = 1
	}
	if sum.Rows <= s.opts.RowsPerUpload {
		raw, err := withReader(src, io.ReadAll)
		if err != nil {
			return UploadResult{}, err
		}
		exec, err := s.upload(ctx, t, integrationID, src.file, src.name, src.format, opt.Delimiter, !src.noHeader, raw)
		if err != nil {
			return UploadResult{}, (&stopped{chunk: 1, chunks: 1, firstRow: first, rows: sum.Rows, err: err}).error()
		}
		out.Executions = append(out.Executions, Execution{ExecutionID: exec, FirstRow: first, Rows: sum.Rows})
	} else {
		// Chunks are background work: interactive calls go first.
		bctx := throttle.WithPriority(ctx, throttle.Background)
		chunks := (sum.Rows + s.opts.RowsPerUpload - 1) / s.opts.RowsPerUpload
		uploaded := 0
		var stop *stopped
		_, err = withReader(src, func(r io.Reader) (bulkfile.Summary, error) {
			return bulkfile.Split(r, opt, s.opts.RowsPerUpload, func(c bulkfile.Chunk) error {
				if stop != nil {
					// The chunk after one whose outcome is unknown: located
					// for the message, never sent.
					stop.nextRow = c.FirstRow
					return errStopped
				}
				name := fmt.Sprintf("%s.part%d.%s", strings.TrimSuffix(src.name, filepath.Ext(src.name)), c.Index+1, c.Format)
				exec, err := s.upload(bctx, t, integrationID, src.file, name, c.Format, chunkDelimiter(opt), true, c.Body)
				if err != nil {
					stop = &stopped{landed: out.Executions, chunk: c.Index + 1, chunks: chunks, firstRow: c.FirstRow, rows: c.Rows,
						notSent: sum.Rows - uploaded - c.Rows, err: err}
					if upstream.OutcomeUnknown(err) && stop.notSent > 0 {
						return nil // on to the next chunk's first row, to say where the rest starts
					}
					return errStopped
				}
				out.Executions = append(out.Executions, Execution{ExecutionID: exec, FirstRow: c.FirstRow, Rows: c.Rows})
				uploaded += c.Rows
				tools.Progress(ctx, float64(uploaded), float64(sum.Rows), fmt.Sprintf("uploaded %d of %d rows", uploaded, sum.Rows))
				return nil
			})
		})
		if stop != nil {
			return UploadResult{}, stop.error()
		}
		if err != nil {
			return UploadResult{}, err
		}
	}
	out.Next = "call workspan_get_bulk_load_status with these execution ids (wait=true to follow them to completion)"
	return out, nil
}

// chunkDelimiter is the delimiter of a chunk body: the input's for csv,
// a comma for csv made from xlsx.
func chunkDelimiter(opt bulkfile.Options) rune {
	if opt.Format == bulkfile.FormatCSV {
		return opt.Delimiter
	}
	return 0
}

func (s *service) upload(ctx context.Context, t target, integrationID string, file bool, name string, format bulkfile.Format, delim rune, header bool, body []byte) (string, error) {
	p := ws.BulkParams{IntegrationID: integrationID, Format: string(format)}
	if delim != 0 && delim != ',' {
		p.ColumnDelimiter = string(delim)
	}
	if t == toOpportunities && file {
		p.HasHeaderRow = &header
	}
	var exec *ws.BulkExecution
	var err error
	switch {
	case t == toData && file:
		exec, err = s.client.BulkLoadFile(ctx, p, name, body)
	case t == toData:
		exec, err = s.client.BulkLoad(ctx, p, body)
	case file:
		exec, err = s.client.BulkLoadOpportunitiesFile(ctx, p, name, body)
	default:
		exec, err = s.client.BulkLoadOpportunities(ctx, p, body)
	}
	if err != nil {
		if te := s.unknownIntegrationError(ctx, err, integrationID); te != nil {
			return "", te
		}
		return "", err
	}
	return exec.ExecutionID, nil
}

func withReader[T any](src input, fn func(io.Reader) (T, error)) (T, error) {
	r, err := src.open()
	if err != nil {
		var zero T
		return zero, tools.InvalidArgument("path", "cannot read %s: %s", bulkfile.Excerpt(src.name), bulkfile.ExcerptError(err))
	}
	defer r.Close()
	return fn(r)
}

// inputError turns a validation failure into invalid_argument naming rows
// and columns. File content reaches the message only as bulkfile quotes it
// (bulkfile.Excerpt: short and escaped).
func inputError(field, name string, err error) error {
	var ve *bulkfile.ValidationError
	if errors.As(err, &ve) {
		return tools.InvalidArgument(field, "%s was not uploaded: %s", bulkfile.Excerpt(name), ve.Error())
	}
	var te *tools.Error
	if errors.As(err, &te) {
		return te
	}
	return tools.InvalidArgument(field, "%s could not be read: %s", bulkfile.Excerpt(name), bulkfile.ExcerptError(err))
}

// errStopped ends a split whose upload stopped (see stopped).
var errStopped = errors.New("upload stopped")

// stopped is an upload that stopped at one chunk (the whole input, when it
// is not split): what landed before it, the chunk itself and what was never
// sent. A chunk that landed is never sent again.
type stopped struct {
	landed   []Execution // executions of the chunks before it, in order
	chunk    int         // its number, from 1
	chunks   int         // how many chunks the input makes
	firstRow int         // its first row (as numbered in the input)
	rows     int         // its data rows
	nextRow  int         // first row of the next chunk; 0 when unknown or none
	notSent  int         // data rows after it, never sent
	err      error
}

// maxCause bounds the upstream failure quoted in a stopped upload's
// message, so that what landed fits in it.
const maxCause = 300

// error reports the stop. When the chunk's outcome is unknown
// (upstream.OutcomeUnknown) it is outcome_unknown, listing the executions
// that landed, the chunk that may have, how to check it and which rows to
// load to resume; otherwise it keeps the failure's own code, and says what
// landed and where to resume.
func (st *stopped) error() error {
	te := tools.AsError(st.err)
	if !upstream.OutcomeUnknown(st.err) {
		if len(st.landed) == 0 {
			return st.err // nothing was created
		}
		head := fmt.Sprintf("%s. Chunk %d of %d (rows %d on) was not loaded. ", strings.TrimRight(te.Message, ". "), st.chunk, st.chunks, st.firstRow)
		tail := fmt.Sprintf("Load only rows %d on once that is dealt with.", st.firstRow)
		return &tools.Error{Code: te.Code, RetryAfterSeconds: te.RetryAfterSeconds, Message: head + st.landedText(head+tail) + tail}
	}
	cause := st.err.Error()
	if len(cause) > maxCause {
		cause = strings.ToValidUTF8(cause[:maxCause], "") + "…"
	}
	if st.chunks == 1 {
		return &tools.Error{Code: tools.CodeOutcomeUnknown, RetryAfterSeconds: te.RetryAfterSeconds, Message: fmt.Sprintf(
			"the upload (one execution, %d data rows from row %d) was sent but no trustworthy answer came back (%s): its execution may or may not exist. "+
				"Do not retry blindly: first check whether those rows were loaded. %s Load them again only if they are not there.",
			st.rows, st.firstRow, cause, checkRows)}
	}
	span := fmt.Sprintf("rows %d on", st.firstRow)
	if st.nextRow > st.firstRow {
		span = fmt.Sprintf("rows %d-%d", st.firstRow, st.nextRow-1)
	}
	head := fmt.Sprintf("bulk load stopped: chunk %d of %d (%s, %d data rows) was sent but no trustworthy answer came back (%s): its execution may or may not exist. ",
		st.chunk, st.chunks, span, st.rows, cause)
	var notSent string
	tail := "Do not retry blindly: first check whether " + span + " were loaded. " + checkRows
	if len(st.landed) > 0 {
		tail += " Follow the landed executions with workspan_get_bulk_load_status."
	}
	switch {
	case st.notSent == 0:
		tail += fmt.Sprintf(" It was the last chunk: if they were not loaded, load rows %d on; if they were, nothing is left.", st.firstRow)
	case st.nextRow > 0:
		notSent = fmt.Sprintf("Never sent: rows %d on (%d data rows). ", st.nextRow, st.notSent)
		tail += fmt.Sprintf(" Then load only rows %d on if they were, or rows %d on if not.", st.nextRow, st.firstRow)
	default:
		notSent = fmt.Sprintf("Never sent: the %d data rows after it. ", st.notSent)
		tail += fmt.Sprintf(" Then load only the rows after it if they were, or rows %d on if not.", st.firstRow)
	}
	msg := head + st.landedText(head+notSent+tail) + notSent + tail
	return &tools.Error{Code: tools.CodeOutcomeUnknown, RetryAfterSeconds: te.RetryAfterSeconds, Message: msg}
}

// checkRows says how to find out whether rows of an upload were loaded.
const checkRows = "WorkSpan lists no executions: look in its integration history, or read some of the rows back with workspan_read_report_data once processed."

// landedText lists the executions that landed: "Landed, never re-send:
// rows 2-5001 in 1 execution: [id rows 2-5001]. ", each with its rows.
// Ids that would push the message (rest being the remainder of it) past
// tools.MaxErrorMessage are left out and counted.
func (st *stopped) landedText(rest string) string {
	if len(st.landed) == 0 {
		return "Nothing landed before it. "
	}
	first := st.landed[0].FirstRow
	intro := fmt.Sprintf("Landed, never re-send: rows %d-%d in %d execution(s): [", first, st.firstRow-1, len(st.landed))
	room := tools.MaxErrorMessage - len(rest) - len(intro) - len("… and 99999 more]. ")
	var b strings.Builder
	for i, e := range st.landed {
		last := st.firstRow - 1
		if i+1 < len(st.landed) {
			last = st.landed[i+1].FirstRow - 1
		}
		item := fmt.Sprintf("%s rows %d-%d", e.ExecutionID, e.FirstRow, last)
		if i > 0 {
			item = ", " + item
		}
		if b.Len()+len(item) > room {
			fmt.Fprintf(&b, "… and %d more", len(st.landed)-i)
			break
		}
		b.WriteString(item)
	}
	return intro + b.String() + "]. "
}
