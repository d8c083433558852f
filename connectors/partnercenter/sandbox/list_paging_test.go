package sandbox

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// Under TopCap, $top caps the whole listing: pages of Options.PageSize, the
// nextLink carrying the remaining $top, and no nextLink once $top were
// served although more match.
func TestTopCapCapsTheCollection(t *testing.T) {
	e := newEnv(t, Options{PageSize: 5})
	e.srv.SetTopMode(TopCap)
	ref := ids(e.all("$orderby", "createdDateTime asc", "$top", "1000"))
	require.Len(t, ref, 60)

	r := e.list("$orderby", "createdDateTime asc", "$top", "12")
	var got []string
	var tops []string
	for {
		for _, it := range r.items(t) {
			got = append(got, it["id"].(string))
		}
		next := r.nextLink()
		if next == "" {
			break
		}
		u, err := url.Parse(next)
		require.NoError(t, err)
		tops = append(tops, u.Query().Get("$top"))
		r = e.get(next)
	}
	require.Equal(t, ref[:12], got, "12 referrals in pages of 5, no more")
	require.Equal(t, []string{"7", "2"}, tops, "each nextLink carries what remains of $top")

	// Without $top, pages run to the end of the collection.
	require.Len(t, e.all("$orderby", "createdDateTime asc"), 60)
	// $top=0 serves nothing.
	require.Empty(t, e.list("$top", "0").items(t))
	require.Empty(t, e.list("$top", "0").nextLink())

	// The default reads $top as the page size.
	e.srv.SetTopMode(TopPageSize)
	r = e.list("$orderby", "createdDateTime asc", "$top", "12")
	require.Len(t, r.items(t), 12)
	require.NotEmpty(t, r.nextLink())
}
