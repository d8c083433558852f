package pipedrive

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Notes are API v1 only: v2 has no notes endpoint.

// Note is a v1 note. Times are "YYYY-MM-DD HH:MM:SS" in UTC, as v1 writes
// them. Deal, Organization, Person and User carry the names Pipedrive
// adds to each note.
type Note struct {
	ID       int64  `json:"id"`
	Content  string `json:"content"`
	UserID   int64  `json:"user_id"`
	DealID   int64  `json:"deal_id,omitempty"`
	OrgID    int64  `json:"org_id,omitempty"`
	PersonID int64  `json:"person_id,omitempty"`
	// ActiveFlag is false for a deleted note.
	ActiveFlag               bool      `json:"active_flag"`
	PinnedToDealFlag         bool      `json:"pinned_to_deal_flag"`
	PinnedToOrganizationFlag bool      `json:"pinned_to_organization_flag"`
	PinnedToPersonFlag       bool      `json:"pinned_to_person_flag"`
	AddTime                  string    `json:"add_time,omitempty"`
	UpdateTime               string    `json:"update_time,omitempty"`
	LastUpdateUserID         int64     `json:"last_update_user_id,omitempty"`
	Deal                     *NoteDeal `json:"deal,omitempty"`
	Organization             *NoteName `json:"organization,omitempty"`
	Person                   *NoteName `json:"person,omitempty"`
	User                     *NoteUser `json:"user,omitempty"`
}

// NoteDeal is the deal a note is attached to.
type NoteDeal struct {
	Title string `json:"title"`
}

// NoteName is the organization or person a note is attached to.
type NoteName struct {
	Name string `json:"name"`
}

// NoteUser is the author of a note.
type NoteUser struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// NoteInput is the body of POST /v1/notes: Content and at least one of
// DealID, OrgID and PersonID. A pin needs the id of what it pins to. Zero
// fields are not sent.
type NoteInput struct {
	// Content is HTML; Pipedrive sanitizes it.
	Content  string `json:"content"`
	DealID   int64  `json:"deal_id,omitempty"`
	OrgID    int64  `json:"org_id,omitempty"`
	PersonID int64  `json:"person_id,omitempty"`
	// UserID makes another user the author (admins only).
	UserID int64 `json:"user_id,omitempty"`
	// AddTime backdates the note: "YYYY-MM-DD HH:MM:SS", UTC.
	AddTime                  string     `json:"add_time,omitempty"`
	PinnedToDealFlag         NumberBool `json:"pinned_to_deal_flag,omitempty"`
	PinnedToOrganizationFlag NumberBool `json:"pinned_to_organization_flag,omitempty"`
	PinnedToPersonFlag       NumberBool `json:"pinned_to_person_flag,omitempty"`
}

// NumberBool is a flag v1 takes as the number 0 or 1.
type NumberBool bool

// MarshalJSON writes 1 or 0.
func (b NumberBool) MarshalJSON() ([]byte, error) {
	if b {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}

// AddNote creates a note (POST /v1/notes).
func (c *Client) AddNote(ctx context.Context, in NoteInput) (*Note, error) {
	return create[Note](ctx, c, "/v1/notes", in)
}

// MaxNotesPage is the largest page ListNotes returns: Pipedrive's v1 limit
// is 500, and ListNotes asks for one note more than the page.
const MaxNotesPage = 499

// ListNotesParams filters GET /v1/notes. Zero values are not sent.
type ListNotesParams struct {
	DealID   int64
	OrgID    int64
	PersonID int64
	// UserID keeps the notes of one author.
	UserID int64
	// Sort is "field ASC|DESC", comma-separated; fields: id, user_id,
	// deal_id, person_id, org_id, content, add_time, update_time.
	Sort string
	// Start is the offset of the page, Limit its size (1..MaxNotesPage,
	// default 100).
	Start int
	Limit int
}

// NotePage is one page of notes. More says whether notes follow it;
// NextStart is the Start of the next page.
type NotePage struct {
	Notes     []Note
	More      bool
	NextStart int
}

// ListNotes returns one page of notes (GET /v1/notes, start/limit paging).
func (c *Client) ListNotes(ctx context.Context, p ListNotesParams) (NotePage, error) {
	limit := p.Limit
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > MaxNotesPage || p.Start < 0 {
		return NotePage{}, fmt.Errorf("pipedrive: notes page start %d, limit %d: want start ≥ 0 and limit 1..%d", p.Start, p.Limit, MaxNotesPage)
	}
	q := query{}
	q.id("deal_id", p.DealID)
	q.id("org_id", p.OrgID)
	q.id("person_id", p.PersonID)
	q.id("user_id", p.UserID)
	q.str("sort", p.Sort)
	url.Values(q).Set("start", strconv.Itoa(p.Start))
	// The reply's additional_data.pagination is not read by the envelope
	// reader (it knows v2's cursor only): one more note than the page
	// tells whether more follow, as more_items_in_collection would.
	q.num("limit", limit+1)
	var notes []Note
	if _, err := c.do(ctx, http.MethodGet, "/v1/notes", url.Values(q), nil, &notes); err != nil {
		return NotePage{}, err
	}
	page := NotePage{Notes: notes}
	if len(notes) > limit {
		page.Notes, page.More, page.NextStart = notes[:limit], true, p.Start+limit
	}
	return page, nil
}
