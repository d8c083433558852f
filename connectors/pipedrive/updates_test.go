package pipedrive_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// PatchDeal sends exactly the fields set: 0 as a value, null for a
// cleared field, [] for no labels, custom fields by code.
func TestPatchDeal(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	id := firstDeal(t, e, "open")

	d, err := e.c.PatchDeal(ctx, id, pipedrive.DealPatch{
		DealInput: pipedrive.DealInput{Value: ptr(0.0), Currency: ptr("EUR"), ExpectedCloseDate: ptr("2027-03-31"),
			CustomFields: map[string]any{"84457dce1a2df79022c16635cd865055e0a555b4": "Aiko Tanaka"}},
		Probability: ptr(35.0),
		LabelIDs:    []int64{3, 5},
	})
	require.NoError(t, err)
	req := e.last()
	assert.Equal(t, http.MethodPatch, req.Method)
	assert.Equal(t, fmt.Sprintf("/api/v2/deals/%d", id), req.Path)
	assert.JSONEq(t, `{"value":0,"currency":"EUR","expected_close_date":"2027-03-31","probability":35,"label_ids":[3,5],
		"custom_fields":{"84457dce1a2df79022c16635cd865055e0a555b4":"Aiko Tanaka"}}`, string(req.Body))
	assert.Zero(t, d.Value)
	assert.Equal(t, "EUR", d.Currency)
	require.NotNil(t, d.Probability)
	assert.Equal(t, 35.0, *d.Probability)
	assert.Equal(t, []int64{3, 5}, d.LabelIDs)
	assert.JSONEq(t, `"Aiko Tanaka"`, string(d.CustomFields["84457dce1a2df79022c16635cd865055e0a555b4"]))
	assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/deals/%d", id)), d)

	d, err = e.c.PatchDeal(ctx, id, pipedrive.DealPatch{LabelIDs: []int64{}, Null: []string{pipedrive.FieldProbability}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"label_ids":[],"probability":null}`, string(e.last().Body))
	assert.Nil(t, d.Probability)
	assert.Empty(t, d.LabelIDs)
	assert.Equal(t, "2027-03-31", d.ExpectedCloseDate, "fields not sent keep their values")

	// Bodies the client cannot mean are refused before anything is sent.
	sent := len(e.requests())
	for _, p := range []pipedrive.DealPatch{
		{Probability: ptr(10.0), Null: []string{pipedrive.FieldProbability}},
		{Null: []string{"title"}},
	} {
		_, err := e.c.PatchDeal(ctx, id, p)
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
	}
	assert.Len(t, e.requests(), sent)
}

// A 404 about one record names it, and still is the upstream's 404.
func TestNotFoundNamesTheRecord(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	calls := []struct {
		entity string
		write  bool
		call   func() error
	}{
		{pipedrive.EntityDeal, false, func() error { _, err := e.c.GetDeal(ctx, 4242); return err }},
		{pipedrive.EntityDeal, true, func() error { _, err := e.c.UpdateDeal(ctx, 4242, pipedrive.DealInput{Title: ptr("x")}); return err }},
		{pipedrive.EntityDeal, true, func() error { return e.c.DeleteDeal(ctx, 4242) }},
		{pipedrive.EntityStage, false, func() error { _, err := e.c.GetStage(ctx, 4242); return err }},
		{pipedrive.EntityActivity, false, func() error { _, err := e.c.GetActivity(ctx, 4242); return err }},
		{pipedrive.EntityActivity, true, func() error {
			_, err := e.c.UpdateActivity(ctx, 4242, pipedrive.ActivityPatch{Done: ptr(true)})
			return err
		}},
		{pipedrive.EntityPerson, false, func() error { _, err := e.c.GetPerson(ctx, 4242); return err }},
		{pipedrive.EntityOrganization, false, func() error { _, err := e.c.GetOrganization(ctx, 4242); return err }},
	}
	for _, c := range calls {
		err := c.call()
		var nf *pipedrive.NotFoundError
		require.ErrorAs(t, err, &nf, "%s: %v", e.last().Path, err)
		assert.Equal(t, c.entity, nf.Entity)
		assert.Equal(t, int64(4242), nf.ID)
		assert.Equal(t, "pipedrive: "+c.entity+" 4242 not found", err.Error())
		ue := upstreamErr(t, err, http.StatusNotFound)
		assert.Equal(t, "Entity was not found", ue.Message)
		assert.Equal(t, c.write, upstream.RequestSent(err), "%s", e.last().Method)
		assert.False(t, upstream.OutcomeUnknown(err), "a 404 is a refusal")
	}

	// Other failures are not named: a 400 stays what it was.
	_, err := e.c.UpdateDeal(ctx, 1, pipedrive.DealInput{StageID: ptr(int64(99))})
	var nf *pipedrive.NotFoundError
	assert.NotErrorAs(t, err, &nf)
	upstreamErr(t, err, http.StatusBadRequest)
}

func TestUpdateActivity(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	a, err := e.c.AddActivity(ctx, pipedrive.ActivityInput{Type: "call", Subject: "Scoping", DealID: 5, DueDate: "2026-03-10", DueTime: "10:00"})
	require.NoError(t, err)

	got, err := e.c.UpdateActivity(ctx, a.ID, pipedrive.ActivityPatch{Subject: ptr("Scoping (moved)"), DueDate: ptr("2026-03-12"), Done: ptr(true), OwnerID: ptr(int64(2))})
	require.NoError(t, err)
	req := e.last()
	assert.Equal(t, http.MethodPatch, req.Method)
	assert.Equal(t, fmt.Sprintf("/api/v2/activities/%d", a.ID), req.Path)
	assert.JSONEq(t, `{"subject":"Scoping (moved)","due_date":"2026-03-12","done":true,"owner_id":2}`, string(req.Body))
	assert.Equal(t, "Scoping (moved)", got.Subject)
	assert.True(t, got.Done)
	assert.Equal(t, testNowWire, got.MarkedAsDoneTime)
	assert.Equal(t, "10:00:00", got.DueTime, "fields not sent keep their values")
	assert.Equal(t, int64(2), got.OwnerID)
	assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/activities/%d", a.ID)), got)

	again, err := e.c.GetActivity(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, got, again)

	reopened, err := e.c.UpdateActivity(ctx, a.ID, pipedrive.ActivityPatch{Done: ptr(false)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"done":false}`, string(e.last().Body), "false is sent, not left out")
	assert.False(t, reopened.Done)
	assert.Empty(t, reopened.MarkedAsDoneTime)

	_, err = e.c.UpdateActivity(ctx, a.ID, pipedrive.ActivityPatch{Type: ptr("fax")})
	ue := upstreamErr(t, err, http.StatusBadRequest)
	assert.Contains(t, ue.Message, "'type'")
}

func TestActivitiesByIDAndUpdatedUntil(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	acts, err := e.c.ActivitiesByID(ctx, []int64{2, 1, 999999})
	require.NoError(t, err)
	require.Len(t, acts, 2, "ids that do not exist are left out")
	assert.Equal(t, "/api/v2/activities", e.last().Path)
	assert.Equal(t, url.Values{"ids": {"2,1,999999"}, "limit": {"100"}}, e.last().Query)

	until := testNow.Add(-30 * 24 * time.Hour)
	page, _, err := e.c.ListActivities(ctx, pipedrive.ListActivitiesParams{UpdatedUntil: until, Limit: 500})
	require.NoError(t, err)
	assert.Equal(t, until.Format(time.RFC3339), e.last().Query.Get("updated_until"))
	require.NotEmpty(t, page)
	for _, a := range page {
		assert.Less(t, a.UpdateTime, until.Format(time.RFC3339))
	}
}

// A full deal read decodes every field include_fields asked for.
func TestFullDealRead(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	d, err := e.c.GetDealWith(ctx, 3, pipedrive.GetDealParams{IncludeFields: pipedrive.FullDealFields})
	require.NoError(t, err)
	raw := e.raw("/api/v2/deals/3", url.Values{"include_fields": {e.last().Query.Get("include_fields")}})["data"].(map[string]any)
	for _, f := range pipedrive.FullDealFields {
		assert.Contains(t, raw, f, "asked for and sent")
	}
	assertDecoded(t, raw, d)
	assertDecoded(t, raw, d.DealIncluded)
	assert.Equal(t, int(raw["activities_count"].(float64)), d.ActivitiesCount)
	assert.Equal(t, d.ActivitiesCount, d.DoneActivitiesCount+d.UndoneActivitiesCount)
	assert.NotEmpty(t, d.SmartBCCEmail)
}
