package pipedrive

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// noteTools returns the tools of notes on deals, organizations and persons.
func (s *service) noteTools() []tools.Tool {
	return []tools.Tool{
		newTool(s, tools.Spec{
			Name: "pipedrive_add_note", Title: "Add note", Toolset: Toolset, Operation: "AddNote",
			Description: "Add a note (text or HTML) to a deal, an organization and/or a person.",
			Creates:     createsNote,
		}, s.addNote),
		newTool(s, tools.Spec{
			Name: "pipedrive_list_notes", Title: "List notes", Toolset: Toolset, Operation: "ListNotes",
			ReadOnly: true, Idempotent: true,
			Description: "List the notes of a deal, organization or person, newest first. While has_more, pass next_cursor as cursor.",
		}, s.listNotes),
	}
}

var createsNote = &tools.Creates{Record: "note",
	Check: "list the notes of its deal, organization or person with pipedrive_list_notes"}

// AddNoteArgs are the arguments of pipedrive_add_note.
type AddNoteArgs struct {
	Content  string   `json:"content" jsonschema:"minLength=1"`
	DealID   int64    `json:"deal_id,omitempty" jsonschema:"minimum=1"`
	OrgID    int64    `json:"org_id,omitempty" jsonschema:"minimum=1"`
	PersonID int64    `json:"person_id,omitempty" jsonschema:"minimum=1"`
	PinTo    []string `json:"pin_to,omitempty" jsonschema:"enum=deal,enum=organization,enum=person" jsonschema_description:"Pin on these records."`
}

// Note is a note as tools return it. Times are RFC 3339, UTC.
type Note struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	DealID     int64  `json:"deal_id,omitempty"`
	DealTitle  string `json:"deal_title,omitempty"`
	OrgID      int64  `json:"org_id,omitempty"`
	OrgName    string `json:"org_name,omitempty"`
	PersonID   int64  `json:"person_id,omitempty"`
	PersonName string `json:"person_name,omitempty"`
	// PinnedTo names the records the note is pinned on.
	PinnedTo []string `json:"pinned_to,omitempty" jsonschema:"enum=deal,enum=organization,enum=person"`
	// UserName is the author's.
	UserName string `json:"user_name,omitempty"`
	AddTime  string `json:"add_time,omitempty"`
}

func (s *service) addNote(ctx context.Context, in AddNoteArgs) (Note, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Content) == "" {
		return Note{}, tools.InvalidArgument("content", "content must not be blank")
	}
	if in.DealID == 0 && in.OrgID == 0 && in.PersonID == 0 {
		return Note{}, tools.InvalidArgument("", "a note needs deal_id, org_id or person_id (one or more)")
	}
	body := pd.NoteInput{Content: in.Content, DealID: in.DealID, OrgID: in.OrgID, PersonID: in.PersonID}
	for _, p := range in.PinTo {
		pin, id, field := pinOf(&body, p)
		if id == 0 {
			return Note{}, tools.InvalidArgument("pin_to", "pin_to %s needs %s", p, field)
		}
		*pin = true
	}
	n, err := c.AddNote(ctx, body)
	if err != nil {
		return Note{}, err
	}
	if n.ID == 0 {
		return Note{}, noID("note")
	}
	return shapeNote(ref, *n), nil
}

// pinOf returns the body's pin flag for a pin_to value, the id it needs
// and that id's argument.
func pinOf(b *pd.NoteInput, to string) (*pd.NumberBool, int64, string) {
	switch to {
	case "deal":
		return &b.PinnedToDealFlag, b.DealID, "deal_id"
	case "organization":
		return &b.PinnedToOrganizationFlag, b.OrgID, "org_id"
	default:
		return &b.PinnedToPersonFlag, b.PersonID, "person_id"
	}
}

// ListNotesArgs are the arguments of pipedrive_list_notes.
type ListNotesArgs struct {
	DealID   int64  `json:"deal_id,omitempty" jsonschema:"minimum=1"`
	OrgID    int64  `json:"org_id,omitempty" jsonschema:"minimum=1"`
	PersonID int64  `json:"person_id,omitempty" jsonschema:"minimum=1"`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Default 20."`
	Cursor   string `json:"cursor,omitempty"`
}

// NoteList is a page of notes.
type NoteList struct {
	Notes      []Note `json:"notes"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// notesCursor continues a listing: the offset of the next page and the
// filters it was made for (v1 pages by offset, so a cursor only fits the
// listing that returned it).
type notesCursor struct {
	Start    int   `json:"s"`
	DealID   int64 `json:"d,omitempty"`
	OrgID    int64 `json:"o,omitempty"`
	PersonID int64 `json:"p,omitempty"`
}

func (c notesCursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *service) listNotes(ctx context.Context, in ListNotesArgs) (NoteList, error) {
	c, ref := s.at(ctx)
	at := notesCursor{DealID: in.DealID, OrgID: in.OrgID, PersonID: in.PersonID}
	if in.Cursor != "" {
		var got notesCursor
		b, err := base64.RawURLEncoding.DecodeString(in.Cursor)
		if err != nil || json.Unmarshal(b, &got) != nil || got.Start < 0 {
			return NoteList{}, tools.InvalidArgument("cursor", "cursor is not one this tool returned; start again without it")
		}
		if got.DealID != at.DealID || got.OrgID != at.OrgID || got.PersonID != at.PersonID {
			return NoteList{}, tools.InvalidArgument("cursor", "cursor belongs to another listing: pass the deal_id, org_id and person_id of the call that returned it")
		}
		at = got
	}
	page, err := c.ListNotes(ctx, pd.ListNotesParams{DealID: in.DealID, OrgID: in.OrgID, PersonID: in.PersonID,
		Sort: "add_time DESC, id DESC", Start: at.Start, Limit: orDefault(in.Limit, 20)})
	if err != nil {
		return NoteList{}, err
	}
	out := NoteList{Notes: make([]Note, 0, len(page.Notes)), HasMore: page.More}
	for _, n := range page.Notes {
		out.Notes = append(out.Notes, shapeNote(ref, n))
	}
	if page.More {
		at.Start = page.NextStart
		out.NextCursor = at.encode()
	}
	return out, nil
}

// shapeNote converts a v1 note: names as Pipedrive adds them, times in
// RFC 3339.
func shapeNote(ref *refData, n pd.Note) Note {
	out := Note{ID: n.ID, Content: n.Content, DealID: n.DealID, OrgID: n.OrgID, PersonID: n.PersonID, AddTime: v1Time(n.AddTime)}
	if n.Deal != nil {
		out.DealTitle = n.Deal.Title
	}
	if n.Organization != nil {
		out.OrgName = n.Organization.Name
		ref.rememberOrg(n.OrgID, out.OrgName)
	}
	if n.Person != nil {
		out.PersonName = n.Person.Name
		ref.rememberPerson(n.PersonID, out.PersonName)
	}
	if n.User != nil {
		out.UserName = n.User.Name
	}
	for _, p := range []struct {
		on   bool
		name string
	}{{n.PinnedToDealFlag, "deal"}, {n.PinnedToOrganizationFlag, "organization"}, {n.PinnedToPersonFlag, "person"}} {
		if p.on {
			out.PinnedTo = append(out.PinnedTo, p.name)
		}
	}
	return out
}

// v1Time turns v1's "YYYY-MM-DD HH:MM:SS" (UTC) into RFC 3339, as API v2
// writes times; anything else is kept as sent.
func v1Time(s string) string {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}
