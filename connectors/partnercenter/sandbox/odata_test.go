package sandbox

import (
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sampleDoc is one referral in the generic form filters read.
var sampleDoc = toDoc([]byte(`{
	"id": "0f6b7e52-1c1a-4d55-9d7e-3a6e8f1b2c4d",
	"engagementId": "7a1c0d9e-5b2f-4e3a-8c6d-1f2e3d4c5b6a",
	"name": "Contoso Ltd - Azure migration",
	"organizationId": "3ca4ea0b-7b89-4e38-87aa-2017df7f57a9",
	"organizationName": "Trey Research",
	"createdDateTime": "2026-09-10T08:30:00.0000000Z",
	"updatedDateTime": "2026-09-12T17:00:00.0000000Z",
	"status": "New",
	"substatus": "Pending",
	"type": "Shared",
	"qualification": "SalesQualified",
	"direction": "Incoming",
	"favorite": true,
	"customerProfile": {"name": "Contoso Ltd", "address": {"city": "Redmond", "country": "US"}},
	"consent": {"consentToContact": true},
	"details": {"notes": "It's urgent", "dealValue": 250000, "currency": "USD", "closingDateTime": "2026-12-31T00:00:00.0000000Z"},
	"team": [{"email": "a@b.com"}],
	"eTag": "\"1\""
}`))

func TestFilterEvaluates(t *testing.T) {
	cases := []struct {
		filter string
		want   bool
	}{
		// The Partner Center docs' examples.
		{"status eq 'New' and qualification eq 'SalesQualified'", true},
		{"customerProfile/address/country eq 'US' and direction eq 'Incoming'", true},
		{"engagementId eq '7a1c0d9e-5b2f-4e3a-8c6d-1f2e3d4c5b6a'", true},
		{"engagementId eq 7A1C0D9E-5B2F-4E3A-8C6D-1F2E3D4C5B6A", true},
		{"engagementId eq guid'7a1c0d9e-5b2f-4e3a-8c6d-1f2e3d4c5b6a'", true},
		{"id eq '0F6B7E52-1C1A-4D55-9D7E-3A6E8F1B2C4D'", true},

		// Comparison operators.
		{"status ne 'Closed'", true},
		{"status ne 'New'", false},
		{"details/dealValue gt 100000", true},
		{"details/dealValue ge 250000", true},
		{"details/dealValue gt 250000", false},
		{"details/dealValue lt 250000.5", true},
		{"details/dealValue le 2.5e5", true},
		{"details/dealValue eq -1", false},
		{"favorite eq true", true},
		{"favorite", true},
		{"consent/consentToContact and favorite", true},
		{"consent/consentToShareReferralWithMicrosoftSellers eq null", true},
		{"consent/consentToShareReferralWithMicrosoftSellers ne true", true},

		// Enumerations compare case-insensitively; other strings do not.
		{"status eq 'new'", true},
		{"TYPE eq 'SHARED'", true},
		{"qualification eq 'salesqualified'", true},
		{"direction eq 'incoming'", true},
		{"customerProfile/name eq 'contoso ltd'", false},
		{"tolower(customerProfile/name) eq 'contoso ltd'", true},
		{"toupper(customerProfile/address/city) eq 'REDMOND'", true},

		// Date-times: bare, typed and quoted literals, compared as instants.
		{"createdDateTime gt 2026-09-01T00:00:00Z", true},
		{"createdDateTime gt 2026-09-10T08:30:00Z", false},
		{"createdDateTime ge 2026-09-10T08:30:00Z", true},
		{"createdDateTime eq 2026-09-10T10:30:00+02:00", true},
		{"createdDateTime lt 2026-09-10T08:30:00.0000001Z", true},
		{"createdDateTime gt 2026-09-10", true},
		{"createdDateTime lt datetime'2026-09-11T00:00:00Z'", true},
		{"createdDateTime lt datetimeoffset'2026-09-10T00:00:00Z'", false},
		{"updatedDateTime ge '2026-09-12T17:00:00Z'", true},
		{"details/closingDateTime lt 2027-01-01T00:00:00Z and details/closingDateTime gt createdDateTime", true},
		{"acceptedDateTime eq null", true},
		{"acceptedDateTime gt 2020-01-01T00:00:00Z", false},

		// Boolean logic and precedence.
		{"status eq 'Closed' or status eq 'New'", true},
		{"status eq 'Closed' or status eq 'Active'", false},
		{"not (status eq 'Closed')", true},
		{"not status eq 'New'", false},
		{"not(status eq 'New') or type eq 'Shared'", true},
		{"status eq 'Closed' and type eq 'Shared' or direction eq 'Incoming'", true},
		{"status eq 'Closed' and (type eq 'Shared' or direction eq 'Incoming')", false},
		{"((status eq 'New'))", true},
		{"status in ('Active', 'new')", true},
		{"customerProfile/address/country in ('GB','DE')", false},
		{"STATUS EQ 'New' AND Direction Eq 'Incoming'", true},

		// String functions and escaping.
		{"contains(name, 'Azure')", true},
		{"contains(name, 'azure')", false},
		{"contains(tolower(name), 'azure')", true},
		{"startswith(customerProfile/name, 'Contoso')", true},
		{"endswith(customerProfile/name, 'Ltd')", true},
		{"startswith(status, 'ne')", true},
		{"details/notes eq 'It''s urgent'", true},
		{"contains(details/notes, '''')", true},
		{"contains(statusReason, 'x')", false},
		{"statusReason eq null", true},
		{"statusReason ne null", false},
		{"inviteContext eq null", true},
		{"customerProfile ne null", true},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			f, err := parseFilter(c.filter)
			require.Nil(t, err, "%v", err)
			require.Equal(t, c.want, f.match(sampleDoc))
		})
	}
}

func TestFilterRejects(t *testing.T) {
	cases := []struct {
		filter string
		pos    int    // expected position in the message
		msg    string // substring of the message
	}{
		{"", 0, "Expression expected"},
		{"status eq", 9, "Expression expected"},
		{"status eq 'New' and", 19, "Expression expected"},
		{"status eq 'New", 10, "Unterminated string"},
		{"status eq 'New')", 15, "Unexpected ')'"},
		{"(status eq 'New'", 16, "')' expected"},
		{"bogus eq 'x'", 0, "Could not find a property named 'bogus'"},
		{"customerProfile/address/planet eq 'x'", 24, "'planet' on 'customerProfile/address'"},
		{"status/name eq 'x'", 6, "no nested properties"},
		{"team/email eq 'a@b.com'", 4, "collection"},
		{"team eq null", 0, "collection"},
		{"customerProfile eq 'x'", 0, "complex type"},
		{"customerProfile", 0, "complex type"},
		{"status eq 5", 7, "incompatible types"},
		{"details/dealValue eq 'big'", 18, "incompatible types"},
		{"createdDateTime gt 'yesterday'", 19, "not a valid date-time"},
		{"createdDateTime gt datetime'soon'", 19, "Invalid date-time literal"},
		{"status eq 'New' and 5", 20, "must be a boolean"},
		{"not 'x'", 4, "must be a boolean"},
		{"status", 0, "must evaluate to a boolean"},
		{"frobnicate(status)", 0, "Unknown function 'frobnicate'"},
		{"contains(status)", 0, "takes 2 argument"},
		{"contains(details/dealValue, '1')", 9, "requires string arguments"},
		{"status eq 'New' & type eq 'Shared'", 16, "Unexpected character '&'"},
		{"status eq 'New' type eq 'Shared'", 16, "Unexpected 'type'"},
		{"team/any(m: m/email eq 'a@b.com')", 4, "collection"},
		{"status in 'New'", 10, "'(' expected"},
		{"status in ('New' 'Active')", 17, "',' or ')' expected"},
		{"status in (type)", 11, "Only literals"},
		{"createdDateTime gt foo'2026-01-01'", 19, "Unrecognized literal type 'foo'"},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			_, err := parseFilter(c.filter)
			require.NotNil(t, err, "filter should be rejected")
			require.Contains(t, err.msg, c.msg)
			require.Contains(t, err.msg, "at position "+strconv.Itoa(c.pos)+" ")
		})
	}
}

func TestFilterOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	all := e.all()

	t.Run("docs examples", func(t *testing.T) {
		got := e.all("$filter", "status eq 'New' and qualification eq 'SalesQualified'")
		require.NotEmpty(t, got)
		want := 0
		for _, r := range all {
			if r["status"] == "New" && r["qualification"] == "SalesQualified" {
				want++
			}
		}
		require.Len(t, got, want)

		got = e.all("$filter", "customerProfile/address/country eq 'US' and direction eq 'Incoming'")
		require.NotEmpty(t, got)
		for _, r := range got {
			require.Equal(t, "US", str(r, "customerProfile/address/country"))
			require.Equal(t, "Incoming", r["direction"])
		}

		// Every referral is found by its engagement; shared engagements span two referrals.
		pairs := 0
		for _, r := range all {
			same := e.all("$filter", "engagementId eq '"+str(r, "engagementId")+"'")
			require.Contains(t, ids(same), r["id"])
			if len(same) == 2 {
				pairs++
			}
		}
		require.Equal(t, 6, pairs, "three engagements with a Microsoft-facing companion")
	})

	t.Run("date range", func(t *testing.T) {
		since := testNow.Add(-7 * 24 * time.Hour).Format(time.RFC3339)
		got := e.all("$filter", "createdDateTime ge "+since+" and direction eq 'Incoming' and status eq 'New'", "$orderby", "createdDateTime desc")
		require.GreaterOrEqual(t, len(got), 4)
		for _, r := range got {
			created, ok := parseTime(str(r, "createdDateTime"))
			require.True(t, ok)
			require.False(t, created.Before(testNow.Add(-7*24*time.Hour)))
		}
	})

	t.Run("invalid filter is 400 with position", func(t *testing.T) {
		for _, f := range []string{"status eq", "nope eq 1", "status eq 'New' and", "contains(status 'x')"} {
			desc := e.list("$filter", f).failed(t, http.StatusBadRequest)
			require.Contains(t, desc, "position")
		}
	})
}

func TestOrderBy(t *testing.T) {
	e := newEnv(t, Options{})

	t.Run("default is createdDateTime desc", func(t *testing.T) {
		got := e.all()
		require.True(t, sort.SliceIsSorted(got, func(i, j int) bool {
			return str(got[i], "createdDateTime") > str(got[j], "createdDateTime")
		}))
	})

	t.Run("multiple keys", func(t *testing.T) {
		got := e.all("$orderby", "customerProfile/address/country asc, details/dealValue desc")
		require.Len(t, got, 60)
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			ca, cb := str(a, "customerProfile/address/country"), str(b, "customerProfile/address/country")
			require.LessOrEqual(t, ca, cb)
			if ca == cb {
				require.GreaterOrEqual(t, dig(a, "details/dealValue").(float64), dig(b, "details/dealValue").(float64))
			}
		}
	})

	t.Run("date-times order as instants, nulls first", func(t *testing.T) {
		got := e.all("$orderby", "acceptedDateTime")
		seenValue := false
		var prev time.Time
		for _, r := range got {
			v := str(r, "acceptedDateTime")
			if v == "" {
				require.False(t, seenValue, "nulls sort first")
				continue
			}
			seenValue = true
			tm, _ := parseTime(v)
			require.False(t, tm.Before(prev))
			prev = tm
		}
		require.True(t, seenValue)
	})

	t.Run("ties break on id", func(t *testing.T) {
		got := e.all("$orderby", "type desc")
		for i := 1; i < len(got); i++ {
			if got[i-1]["type"] == got[i]["type"] {
				require.Less(t, got[i-1]["id"], got[i]["id"])
			} else {
				require.Equal(t, "Shared", got[i-1]["type"])
			}
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, ob := range []string{"nope", "createdDateTime sideways", "customerProfile", "team", "status asc desc", "status,,type", "customerProfile/bogus"} {
			desc := e.list("$orderby", ob).failed(t, http.StatusBadRequest)
			require.Contains(t, desc, "position", ob)
		}
	})
}
