package pipedrive_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/tools"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
)

func TestAddNoteOnADeal(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	var deal pdtools.Deal
	h.call("pipedrive_get_deal", map[string]any{"deal_id": 12}, &deal)

	var n pdtools.Note
	h.call("pipedrive_add_note", map[string]any{"content": "<p>Joint pitch booked with the Microsoft AE.</p>", "deal_id": 12,
		"org_id": deal.OrgID, "pin_to": []any{"deal", "organization"}}, &n)
	assert.Positive(t, n.ID)
	assert.Equal(t, "<p>Joint pitch booked with the Microsoft AE.</p>", n.Content)
	assert.Equal(t, int64(12), n.DealID)
	assert.Equal(t, deal.Title, n.DealTitle)
	assert.Equal(t, deal.OrgID, n.OrgID)
	assert.Equal(t, deal.OrgName, n.OrgName)
	assert.Equal(t, []string{"deal", "organization"}, n.PinnedTo)
	assert.Equal(t, "Alex Morgan", n.UserName)
	_, err := time.Parse(time.RFC3339, n.AddTime)
	assert.NoError(t, err, "times in RFC 3339, as the other tools write them: %s", n.AddTime)

	var list pdtools.NoteList
	h.call("pipedrive_list_notes", map[string]any{"deal_id": 12}, &list)
	require.NotEmpty(t, list.Notes)
	assert.Equal(t, n, list.Notes[0], "newest first")
}

func TestListNotesPages(t *testing.T) {
	h := newHarness(t, tools.Policy{})
	for i := range 7 {
		h.call("pipedrive_add_note", map[string]any{"content": fmt.Sprintf("Weekly update %d", i), "person_id": 30}, &pdtools.Note{})
	}
	var all pdtools.NoteList
	h.call("pipedrive_list_notes", map[string]any{"person_id": 30, "limit": 100}, &all)
	require.GreaterOrEqual(t, len(all.Notes), 7)
	assert.False(t, all.HasMore)
	assert.Empty(t, all.NextCursor)
	assert.Equal(t, "Weekly update 6", all.Notes[0].Content, "newest first (the last added, by id on equal times)")
	for _, n := range all.Notes {
		assert.Equal(t, int64(30), n.PersonID)
	}

	var walked []pdtools.Note
	args := map[string]any{"person_id": 30, "limit": 3}
	var first string
	for pages := 0; ; pages++ {
		require.Less(t, pages, 50)
		var page pdtools.NoteList
		h.call("pipedrive_list_notes", args, &page)
		walked = append(walked, page.Notes...)
		if !page.HasMore {
			assert.Empty(t, page.NextCursor)
			break
		}
		assert.Len(t, page.Notes, 3)
		require.NotEmpty(t, page.NextCursor)
		if first == "" {
			first = page.NextCursor
		}
		args["cursor"] = page.NextCursor
	}
	assert.Equal(t, all.Notes, walked)

	// A cursor continues the listing that returned it, and no other.
	before := h.sandbox.RequestCount()
	e := h.callErr("pipedrive_list_notes", map[string]any{"person_id": 31, "cursor": first})
	assert.Equal(t, tools.CodeInvalidArgument, e.Code)
	assert.Equal(t, "cursor", e.Field)
	assert.Contains(t, e.Message, "another listing")
	e = h.callErr("pipedrive_list_notes", map[string]any{"cursor": first})
	assert.Equal(t, "cursor", e.Field)
	assert.Equal(t, before, h.sandbox.RequestCount())

	// Without a record, every note of the company, newest first.
	var latest pdtools.NoteList
	h.call("pipedrive_list_notes", map[string]any{"limit": 2}, &latest)
	assert.Len(t, latest.Notes, 2)
	assert.True(t, latest.HasMore)
	assert.GreaterOrEqual(t, latest.Notes[0].AddTime, latest.Notes[1].AddTime)
}
