package pipedrive_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
)

// --- notes (v1) ---------------------------------------------------------------

func TestAddNote(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	deal, err := e.c.GetDeal(ctx, 3)
	require.NoError(t, err)

	n, err := e.c.AddNote(ctx, pipedrive.NoteInput{Content: "<p>Referral accepted</p>", DealID: 3, PinnedToDealFlag: true})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/v1/notes", r.Path)
	assert.Empty(t, r.Query)
	sentJSON(t, r, `{"content":"<p>Referral accepted</p>","deal_id":3,"pinned_to_deal_flag":1}`)
	assert.Positive(t, n.ID)
	assert.Equal(t, "<p>Referral accepted</p>", n.Content)
	assert.Equal(t, int64(3), n.DealID)
	assert.Equal(t, deal.OrgID, n.OrgID)
	assert.Equal(t, deal.PersonID, n.PersonID)
	assert.True(t, n.PinnedToDealFlag)
	assert.False(t, n.PinnedToPersonFlag)
	assert.True(t, n.ActiveFlag)
	assert.Equal(t, "2026-03-02 12:00:00", n.AddTime)
	require.NotNil(t, n.Deal)
	assert.Equal(t, deal.Title, n.Deal.Title)
	org, err := e.c.GetOrganization(ctx, deal.OrgID)
	require.NoError(t, err)
	assert.Equal(t, org.Name, n.Organization.Name)
	assert.Equal(t, "Alex Morgan", n.User.Name)
	assert.Equal(t, int64(1), n.UserID)

	on, err := e.c.AddNote(ctx, pipedrive.NoteInput{Content: "Met at the summit", PersonID: 4, OrgID: 2, UserID: 2,
		AddTime: "2026-02-27 09:00:00", PinnedToPersonFlag: true})
	require.NoError(t, err)
	sentJSON(t, e.last(), `{"content":"Met at the summit","org_id":2,"person_id":4,"user_id":2,"add_time":"2026-02-27 09:00:00","pinned_to_person_flag":1}`)
	assert.Zero(t, on.DealID)
	assert.Nil(t, on.Deal)
	assert.Equal(t, int64(2), on.UserID)

	_, err = e.c.AddNote(ctx, pipedrive.NoteInput{Content: "orphan"})
	assert.Contains(t, upstreamErr(t, err, http.StatusBadRequest).Message, "'deal_id'")
	_, err = e.c.AddNote(ctx, pipedrive.NoteInput{Content: "x", DealID: 4242})
	assert.Equal(t, "Deal with id 4242 does not exist", upstreamErr(t, err, http.StatusBadRequest).Message)
}

func TestListNotes(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	for i := 0; i < 5; i++ {
		_, err := e.c.AddNote(ctx, pipedrive.NoteInput{Content: "Update", OrgID: 8})
		require.NoError(t, err)
	}

	page, err := e.c.ListNotes(ctx, pipedrive.ListNotesParams{OrgID: 8, Sort: "add_time DESC", Limit: 2})
	require.NoError(t, err)
	r := e.last()
	assert.Equal(t, "/v1/notes", r.Path)
	assert.Equal(t, url.Values{"org_id": {"8"}, "sort": {"add_time DESC"}, "start": {"0"}, "limit": {"3"}}, r.Query,
		"one note more than the page tells whether more follow")
	assert.Len(t, page.Notes, 2)
	assert.True(t, page.More)
	assert.Equal(t, 2, page.NextStart)

	// Walking the pages yields what one large page holds, in order.
	var walked []pipedrive.Note
	p := pipedrive.ListNotesParams{OrgID: 8, Sort: "add_time DESC", Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 50)
		page, err := e.c.ListNotes(ctx, p)
		require.NoError(t, err)
		walked = append(walked, page.Notes...)
		if !page.More {
			assert.Zero(t, page.NextStart)
			break
		}
		assert.Equal(t, p.Start+2, page.NextStart)
		p.Start = page.NextStart
	}
	whole, err := e.c.ListNotes(ctx, pipedrive.ListNotesParams{OrgID: 8, Sort: "add_time DESC", Limit: pipedrive.MaxNotesPage})
	require.NoError(t, err)
	assert.False(t, whole.More)
	assert.Equal(t, whole.Notes, walked)
	assert.GreaterOrEqual(t, len(walked), 5)
	for _, n := range walked {
		assert.Equal(t, int64(8), n.OrgID)
	}
	raw := e.rawList("/v1/notes", url.Values{"org_id": {"8"}, "sort": {"add_time DESC"}, "limit": {"500"}})
	require.Len(t, raw, len(walked))
	for i := range raw {
		assertDecoded(t, raw[i], walked[i])
	}

	byDeal, err := e.c.ListNotes(ctx, pipedrive.ListNotesParams{DealID: 1, PersonID: 2, UserID: 3, Start: 4})
	require.NoError(t, err)
	assert.Empty(t, byDeal.Notes)
	assert.Equal(t, url.Values{"deal_id": {"1"}, "person_id": {"2"}, "user_id": {"3"}, "start": {"4"}, "limit": {"101"}}, e.last().Query)

	sent := len(e.requests())
	for _, bad := range []pipedrive.ListNotesParams{{Limit: pipedrive.MaxNotesPage + 1}, {Limit: -1}, {Start: -1}} {
		_, err := e.c.ListNotes(ctx, bad)
		require.Error(t, err, "%+v", bad)
	}
	assert.Len(t, e.requests(), sent, "refused before sending")

	_, err = e.c.ListNotes(ctx, pipedrive.ListNotesParams{Sort: "title"})
	upstreamErr(t, err, http.StatusBadRequest)
}

func TestNoteFlagsAreNumbers(t *testing.T) {
	b, err := json.Marshal(pipedrive.NoteInput{Content: "x", PersonID: 1, PinnedToPersonFlag: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"content":"x","person_id":1,"pinned_to_person_flag":1}`, string(b))
	b, err = json.Marshal(struct{ F pipedrive.NumberBool }{false})
	require.NoError(t, err)
	assert.JSONEq(t, `{"F":0}`, string(b))
}
