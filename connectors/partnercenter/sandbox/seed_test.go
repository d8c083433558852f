package sandbox

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

func TestSeedShape(t *testing.T) {
	e := newEnv(t, Options{})
	all := e.all()
	require.Len(t, all, 60)

	combos := map[string]int{}
	countries := map[string]bool{}
	customers := map[string]bool{}
	seenIDs := map[string]bool{}
	seenETags := map[string]bool{}
	recent := 0
	recentIncomingNewShared := map[string]bool{}
	withRegistrations := 0
	day := 24 * time.Hour
	for _, r := range all {
		id := r["id"].(string)
		require.Regexp(t, guidRE, id)
		require.False(t, seenIDs[id], "duplicate id")
		seenIDs[id] = true
		etag := r["eTag"].(string)
		require.False(t, seenETags[etag], "duplicate eTag")
		seenETags[etag] = true

		status, sub := r["status"].(string), r["substatus"].(string)
		require.Contains(t, substatusOf[status], sub)
		combos[fmt.Sprintf("%s/%s/%s/%s", r["direction"], r["type"], status, sub)]++
		country := str(r, "customerProfile/address/country")
		countries[country] = true
		customers[str(r, "customerProfile/name")] = true
		require.Equal(t, "Trey Research", r["organizationName"])
		require.NotEmpty(t, r["qualification"])
		require.NotEmpty(t, dig(r, "details/dealValue"))
		require.Len(t, str(r, "details/currency"), 3)
		require.NotEmpty(t, r["team"])
		require.NotEmpty(t, dig(r, "customerProfile/team"))
		require.NotEmpty(t, r["consent"])
		require.NotEmpty(t, dig(r, "details/requirements/solutions"))
		require.NotEmpty(t, r["target"])

		created, ok := parseTime(str(r, "createdDateTime"))
		require.True(t, ok)
		updated, _ := parseTime(str(r, "updatedDateTime"))
		require.True(t, created.After(testNow.Add(-121*day)), "created within ~120 days")
		require.False(t, created.After(testNow))
		require.False(t, updated.Before(created))
		require.False(t, updated.After(testNow))
		if created.After(testNow.Add(-7 * day)) {
			recent++
			if r["direction"] == "Incoming" && status == "New" && r["type"] == "Shared" {
				recentIncomingNewShared[country] = true
			}
		}

		if r["direction"] == "Incoming" {
			require.NotEmpty(t, dig(r, "inviteContext/invitedBy/organizationName"), id)
			if r["type"] == "Shared" {
				require.Equal(t, "Microsoft", dig(r, "inviteContext/invitedBy/organizationName"))
			}
		} else {
			require.Nil(t, r["inviteContext"])
		}

		wasAccepted := status == "Active" || sub == "Won" || sub == "Lost"
		require.Equal(t, wasAccepted, r["acceptedDateTime"] != nil, id)
		require.Equal(t, status == "Closed", r["closedDateTime"] != nil, id)
		if status == "Closed" {
			require.NotEmpty(t, r["statusReason"])
		}
		for _, k := range []string{"acceptedDateTime", "closedDateTime"} {
			if v, ok := r[k].(string); ok {
				tm, _ := parseTime(v)
				require.False(t, tm.Before(created), k)
				require.False(t, tm.After(updated), k)
			}
		}
		if regs, ok := r["registrations"].([]any); ok {
			withRegistrations++
			require.True(t, status == "Active" || sub == "Won", "registrations only on accepted referrals")
			require.Equal(t, regs[0].(map[string]any)["status"], r["registrationStatus"])
			reg := regs[0].(map[string]any)
			regAt, _ := parseTime(reg["registrationDateTime"].(string))
			require.False(t, regAt.After(testNow))
		}
	}

	for _, dir := range []string{"Incoming", "Outgoing"} {
		for _, typ := range referralTypes {
			for _, c := range statusCombos {
				key := fmt.Sprintf("%s/%s/%s/%s", dir, typ, c[0], c[1])
				require.Positive(t, combos[key], key)
			}
		}
	}
	for _, c := range []string{"US", "GB", "DE", "FR", "IN", "AU", "CA", "JP"} {
		require.True(t, countries[c], c)
	}
	for _, c := range []string{"Contoso Ltd", "Fabrikam Inc", "Northwind Traders", "Adventure Works", "Woodgrove Bank", "Litware"} {
		require.True(t, customers[c], c)
	}
	require.GreaterOrEqual(t, recent, 5)
	require.True(t, recentIncomingNewShared["US"])
	require.True(t, recentIncomingNewShared["GB"])
	require.GreaterOrEqual(t, withRegistrations, 4)
}

func TestSeedIsDeterministic(t *testing.T) {
	render := func(e *env) string {
		return strings.ReplaceAll(string(e.list("$orderby", "id").raw), e.ts.URL, "BASE")
	}
	a, b := newEnv(t, Options{}), newEnv(t, Options{Seed: 1})
	require.Equal(t, render(a), render(b))

	c := newEnv(t, Options{Seed: 2})
	require.NotEqual(t, render(a), render(c))
	require.Len(t, c.all(), 60)

	// Dates follow the clock at New.
	d := newEnv(t, Options{Clock: clock.NewFake(testNow.Add(48 * time.Hour))})
	shifted := func(e *env) []string {
		var out []string
		for _, r := range e.all("$orderby", "id") {
			tm, _ := parseTime(str(r, "createdDateTime"))
			out = append(out, tm.Sub(e.clock.Now()).String())
		}
		return out
	}
	require.Equal(t, shifted(a), shifted(d))

	// Writes are deterministic too: the same calls give the same ids.
	x, y := newEnv(t, Options{}), newEnv(t, Options{})
	require.Equal(t, x.create(newReferral("Contoso Ltd"))["id"], y.create(newReferral("Contoso Ltd"))["id"])
	x.get(referralsPath) // reads do not disturb the sequence
	require.Equal(t, x.create(newReferral("Contoso Ltd"))["id"], y.create(newReferral("Contoso Ltd"))["id"])
}
