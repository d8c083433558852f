package partnercenter_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
)

// legalMoves is the documented state machine, written out move by move.
var legalMoves = map[[3]string]bool{
	{"New", "New", "Pending"}:        true,
	{"New", "New", "Received"}:       true,
	{"New", "Active", "Accepted"}:    true,
	{"New", "Closed", "Won"}:         true,
	{"New", "Closed", "Lost"}:        true,
	{"New", "Closed", "Declined"}:    true,
	{"New", "Closed", "Expired"}:     true,
	{"Active", "Active", "Accepted"}: true,
	{"Active", "Closed", "Won"}:      true,
	{"Active", "Closed", "Lost"}:     true,
	{"Active", "Closed", "Declined"}: true,
	{"Active", "Closed", "Expired"}:  true,
	{"Closed", "Closed", "Won"}:      true,
	{"Closed", "Closed", "Lost"}:     true,
	{"Closed", "Closed", "Declined"}: true,
	{"Closed", "Closed", "Expired"}:  true,
	// An unchanged status without a substatus changes nothing.
	{"New", "New", ""}:       true,
	{"Active", "Active", ""}: true,
	{"Closed", "Closed", ""}: true,
}

func TestCheckTransitionAllMoves(t *testing.T) {
	statuses := []string{"None", "New", "Active", "Closed", "Engaged", ""}
	subs := []string{"", "None", "Pending", "Received", "Accepted", "Won", "Lost", "Declined", "Expired", "Error"}
	legal := 0
	for _, from := range statuses {
		for _, to := range statuses {
			for _, sub := range subs {
				err := partnercenter.CheckTransition(from, to, sub)
				if legalMoves[[3]string{from, to, sub}] {
					legal++
					assert.NoError(t, err, "%s → %s/%s", from, to, sub)
					continue
				}
				if assert.Error(t, err, "%s → %s/%s", from, to, sub) {
					assert.ErrorIs(t, err, partnercenter.ErrInvalidTransition)
				}
			}
		}
	}
	assert.Equal(t, len(legalMoves), legal, "every legal move was tried")
}

func TestCheckTransitionIgnoresCase(t *testing.T) {
	assert.NoError(t, partnercenter.CheckTransition("active", "CLOSED", "won"))
	assert.Error(t, partnercenter.CheckTransition("closed", "active", "accepted"))
}

func TestCheckTransitionMessages(t *testing.T) {
	err := partnercenter.CheckTransition("Closed", "Active", "Accepted")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Closed is terminal")
	assert.Contains(t, err.Error(), "allowed: Closed (Won, Lost, Declined, Expired)")

	err = partnercenter.CheckTransition("Active", "New", "Pending")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allowed: Active (Accepted), Closed (Won, Lost, Declined, Expired)")

	err = partnercenter.CheckTransition("New", "Active", "Won")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `substatus "Won" is not allowed with status Active; allowed: Accepted`)

	err = partnercenter.CheckTransition("New", "Closed", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a substatus: one of Won, Lost, Declined, Expired")

	err = partnercenter.CheckTransition("None", "New", "Pending")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no documented transitions")
}

func TestPatchPaths(t *testing.T) {
	assert.Len(t, partnercenter.PatchPaths, 18)
	assert.Len(t, partnercenter.RegistrationPatchPaths, 12)
	for _, p := range append(append([]string{}, partnercenter.PatchPaths...), partnercenter.RegistrationPatchPaths...) {
		assert.True(t, strings.HasPrefix(p, "/"), p)
	}
	assert.Contains(t, partnercenter.PatchPaths, "/status")
	assert.Contains(t, partnercenter.PatchPaths, "/team/-")
	assert.NotContains(t, partnercenter.PatchPaths, "/registrations/-")
}

func TestCheckPatch(t *testing.T) {
	ok := []partnercenter.PatchOp{
		{Op: "replace", Path: "/status", Value: "Closed"},
		{Op: "replace", Path: "/substatus", Value: "Won"},
		{Op: "add", Path: "/team/-", Value: partnercenter.Member{Email: "a@b.c"}},
	}
	assert.NoError(t, partnercenter.CheckPatch(ok, partnercenter.PatchPaths))
	assert.NoError(t, partnercenter.CheckPatch(
		[]partnercenter.PatchOp{{Op: "replace", Path: "/registrations/0/contract/value", Value: 10.5}},
		partnercenter.RegistrationPatchPaths))

	for name, ops := range map[string][]partnercenter.PatchOp{
		"empty":             nil,
		"remove":            {{Op: "remove", Path: "/status"}},
		"test":              {{Op: "test", Path: "/status", Value: "New"}},
		"empty op":          {{Path: "/status", Value: "New"}},
		"upper case op":     {{Op: "Replace", Path: "/status", Value: "New"}},
		"unknown path":      {{Op: "replace", Path: "/name", Value: "x"}},
		"registration path": {{Op: "replace", Path: "/registrations/0/contract/value", Value: 1}},
		"one bad of two":    {ok[0], {Op: "replace", Path: "/eTag", Value: "x"}},
		"trailing slash":    {{Op: "replace", Path: "/status/", Value: "x"}},
	} {
		err := partnercenter.CheckPatch(ops, partnercenter.PatchPaths)
		if assert.Error(t, err, name) {
			assert.ErrorIs(t, err, partnercenter.ErrInvalidArgument, name)
		}
	}
	err := partnercenter.CheckPatch([]partnercenter.PatchOp{ok[0], {Op: "replace", Path: "/eTag"}}, partnercenter.PatchPaths)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `operation 1: path "/eTag" cannot be patched`)
}
