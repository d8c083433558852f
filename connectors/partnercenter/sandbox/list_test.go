package sandbox

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListEnvelope(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.list("$count", "true")
	body := r.ok(t, http.StatusOK)
	require.Equal(t, e.ts.URL+"/v1.0/engagements/$metadata#referrals", body["@odata.context"])
	require.Equal(t, float64(60), body["@odata.count"])
	require.Len(t, r.items(t), 60)
	require.NotContains(t, body, "@odata.nextLink", "the default page size holds the whole seed")
	require.Equal(t, "4.0", r.header.Get("OData-Version"))
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "application/json;"))

	body = e.list().ok(t, http.StatusOK)
	require.NotContains(t, body, "@odata.count", "only with $count=true")
	body = e.list("$count", "false").ok(t, http.StatusOK)
	require.NotContains(t, body, "@odata.count")

	// Trailing and repeated slashes, case-insensitive segments.
	for _, p := range []string{"/v1.0/engagements/referrals/", "/v1.0/engagements/referrals//", "//v1.0//engagements/referrals", "/V1.0/Engagements/Referrals"} {
		require.Len(t, e.get(p).items(t), 60, p)
	}
}

func TestPagingVisitsEachReferralOnce(t *testing.T) {
	e := newEnv(t, Options{})
	cases := [][]string{
		{"$top", "7"},
		{"$top", "1"},
		{"$top", "5", "$orderby", "updatedDateTime asc"},
		{"$top", "4", "$orderby", "status, details/dealValue desc"},
		{"$top", "3", "$orderby", "type desc, customerProfile/address/country", "$filter", "direction eq 'Incoming'"},
		{"$top", "6", "$orderby", "acceptedDateTime desc"}, // many nulls
		{"$top", "9", "$orderby", "favorite"},
		{"$top", "8", "$select", "id,status", "$count", "true"},
	}
	for _, opts := range cases {
		t.Run(strings.Join(opts, " "), func(t *testing.T) {
			// The unpaged listing is the reference.
			ref := e.all(append(withoutTop(opts), "$top", "1000")...)
			first := e.list(opts...)
			pages := 1
			seen := map[string]int{}
			var order []string
			r := first
			for {
				items := r.items(t)
				require.LessOrEqual(t, len(items), atoiOpt(opts, "$top"))
				for _, it := range items {
					id, _ := it["id"].(string)
					seen[id]++
					order = append(order, id)
				}
				if r.body["@odata.count"] != nil {
					require.Equal(t, float64(len(ref)), r.body["@odata.count"], "count on every page")
				}
				next := r.nextLink()
				if next == "" {
					break
				}
				u, err := url.Parse(next)
				require.NoError(t, err)
				require.Equal(t, e.ts.URL+"/v1.0/engagements/referrals", u.Scheme+"://"+u.Host+u.Path, "absolute URL")
				q := u.Query()
				require.NotEmpty(t, q.Get("$skiptoken"))
				for i := 0; i+1 < len(opts); i += 2 {
					require.Equal(t, opts[i+1], q.Get(opts[i]), "nextLink keeps %s", opts[i])
				}
				r = e.get(next)
				pages++
			}
			for id, n := range seen {
				require.Equal(t, 1, n, "referral %s served %d times", id, n)
			}
			require.Equal(t, ids(ref), order, "pages concatenate to the unpaged order")
			top := atoiOpt(opts, "$top")
			require.Equal(t, (len(ref)+top-1)/top, pages)
		})
	}
}

func withoutTop(opts []string) []string {
	var out []string
	for i := 0; i+1 < len(opts); i += 2 {
		if opts[i] != "$top" {
			out = append(out, opts[i], opts[i+1])
		}
	}
	return out
}

func atoiOpt(opts []string, name string) int {
	for i := 0; i+1 < len(opts); i += 2 {
		if opts[i] == name {
			n := 0
			for _, c := range opts[i+1] {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

func TestPagingIsStableUnderWrites(t *testing.T) {
	e := newEnv(t, Options{})
	before := ids(e.all("$orderby", "createdDateTime asc", "$top", "1000"))
	r := e.list("$orderby", "createdDateTime asc", "$top", "10")
	seen := map[string]int{}
	for {
		for _, it := range r.items(t) {
			seen[it["id"].(string)]++
		}
		// A new referral (newest, so at the end of this order) appears while paging.
		e.clock.Advance(1)
		e.create(newReferral("Fabrikam Inc"))
		if r.nextLink() == "" {
			break
		}
		r = e.get(r.nextLink())
	}
	for _, id := range before {
		require.Equal(t, 1, seen[id], "each referral that existed before paging is served exactly once")
	}
	for id, n := range seen {
		require.Equal(t, 1, n, id)
	}
}

func TestTopSkipCount(t *testing.T) {
	e := newEnv(t, Options{})
	all := ids(e.all())

	got := e.list("$top", "5", "$skip", "10")
	require.Equal(t, all[10:15], ids(got.items(t)))
	require.Equal(t, all[15:20], ids(e.get(got.nextLink()).items(t)), "$skip applies once; the next page follows on")
	require.NotContains(t, got.nextLink(), "$skip=")

	require.Empty(t, e.list("$skip", "60").items(t))
	require.Empty(t, e.list("$skip", "1000").items(t))

	zero := e.list("$top", "0", "$count", "true")
	require.Empty(t, zero.items(t))
	require.Equal(t, float64(60), zero.body["@odata.count"])
	require.Empty(t, zero.nextLink())

	require.Len(t, e.list("$top", "100000").items(t), 60, "large $top is clamped, not rejected")

	count := e.list("$filter", "status eq 'Closed'", "$count", "true", "$top", "2")
	n := 0
	for _, it := range e.all() {
		if it["status"] == "Closed" {
			n++
		}
	}
	require.Equal(t, float64(n), count.body["@odata.count"], "count ignores paging and follows the filter")
	require.Len(t, count.items(t), 2)

	small := newEnv(t, Options{PageSize: 25})
	r := small.list()
	require.Len(t, r.items(t), 25)
	require.NotEmpty(t, r.nextLink())
	require.Len(t, small.all(), 60)

	for _, bad := range [][]string{{"$top", "-1"}, {"$top", "ten"}, {"$skip", "-3"}, {"$skip", "1.5"}, {"$count", "yes"}} {
		e.list(bad...).failed(t, http.StatusBadRequest)
	}
}

func TestQueryOptionValidation(t *testing.T) {
	e := newEnv(t, Options{})
	require.Contains(t, e.get(referralsPath+"?$search=contoso").failed(t, http.StatusBadRequest), "$search")
	e.get(referralsPath+"?$top=1&$top=2").failed(t, http.StatusBadRequest)
	require.Len(t, e.get(referralsPath+"?$TOP=3").items(t), 3, "option names are case-insensitive")
	require.Len(t, e.get(referralsPath+"?top=3&api-version=1").items(t), 60, "non-$ parameters are ignored")
	require.Len(t, e.list("$expand", "anything").items(t), 60, "$expand is accepted and ignored")

	e.list("$skiptoken", "garbage!").failed(t, http.StatusBadRequest)
	next := e.list("$top", "5", "$orderby", "status").nextLink()
	tok := mustQuery(t, next).Get("$skiptoken")
	e.list("$top", "5", "$orderby", "type", "$skiptoken", tok).failed(t, http.StatusBadRequest)
	e.list("$top", "5", "$orderby", "status", "$skiptoken", tok).ok(t, http.StatusOK)
}

func mustQuery(t *testing.T, raw string) url.Values {
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Query()
}

func TestSelect(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.list("$select", "id,status,customerProfile", "$top", "3")
	require.Equal(t, e.ts.URL+"/v1.0/engagements/$metadata#referrals(id,status,customerProfile)", r.body["@odata.context"])
	for _, it := range r.items(t) {
		require.Len(t, it, 3)
		require.Contains(t, it, "id")
		require.Contains(t, it, "status")
		cp := it["customerProfile"].(map[string]any)
		require.Contains(t, cp, "name")
		require.Contains(t, cp, "address", "a complex property selected whole comes whole")
	}
	r = e.list("$select", "status,id", "$top", "1")
	require.Contains(t, string(r.raw), `[{"id":`, "model order, not selection order")

	r = e.list("$select", "details/dealValue, customerProfile/address/country,STATUS", "$top", "2")
	for _, it := range r.items(t) {
		require.Equal(t, []string{"customerProfile", "details", "status"}, sortedKeys(it))
		require.Equal(t, []string{"country"}, sortedKeys(dig(it, "customerProfile/address").(map[string]any)))
		require.Equal(t, []string{"dealValue"}, sortedKeys(it["details"].(map[string]any)))
	}

	r = e.list("$select", "statusReason,inviteContext/notes", "$filter", "status eq 'New' and direction eq 'Outgoing'", "$top", "1")
	it := r.items(t)[0]
	require.Contains(t, it, "statusReason")
	require.Nil(t, it["statusReason"], "selected but absent is null")
	require.Nil(t, it["inviteContext"])

	require.Len(t, e.list("$select", "*", "$top", "1").items(t)[0], len(e.list("$top", "1").items(t)[0]))

	// A whole selection absorbs a partial one in either order.
	for _, sel := range []string{"customerProfile/name,customerProfile", "customerProfile,customerProfile/name"} {
		it := e.list("$select", sel, "$top", "1").items(t)[0]
		require.Contains(t, it["customerProfile"], "address", sel)
	}

	for _, bad := range []string{"nope", "id,", "status/x", "team/email", "customerProfile/nope", "customerProfile,customerProfile/nope"} {
		require.Contains(t, e.list("$select", bad).failed(t, http.StatusBadRequest), "position", bad)
	}
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
