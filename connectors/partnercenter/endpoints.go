package partnercenter

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// ListParams are the OData query options of GET /referrals. Zero values are
// not sent.
type ListParams struct {
	// Filter, e.g. "status eq 'New' and qualification eq 'SalesQualified'".
	Filter string
	// OrderBy, e.g. "createdDateTime desc".
	OrderBy string
	// Select, e.g. "id,status,customerProfile".
	Select string
	Expand string
	Top    int
	Skip   int
	// Count asks for the total number of matches (ReferralPage.Count).
	Count bool
}

func (p ListParams) encode() string {
	var q odataQuery
	q.str("$filter", p.Filter)
	q.str("$orderby", p.OrderBy)
	q.str("$select", p.Select)
	q.str("$expand", p.Expand)
	q.num("$top", p.Top)
	q.num("$skip", p.Skip)
	if p.Count {
		q.str("$count", "true")
	}
	return q.encode()
}

func (c *Client) referralsURL() string { return c.baseURL + "/referrals" }

func (c *Client) referralURL(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("%w: a referral id is required", ErrInvalidArgument)
	}
	return c.referralsURL() + "/" + url.PathEscape(id), nil
}

// ListReferrals returns one page of referrals (GET /referrals).
func (c *Client) ListReferrals(ctx context.Context, p ListParams) (*ReferralPage, error) {
	u := c.referralsURL()
	if q := p.encode(); q != "" {
		u += "?" + q
	}
	return c.page(ctx, u)
}

// NextPage fetches the page an @odata.nextLink points to.
//
// The link must name the referrals collection on the configured API host;
// the token never goes to another host. Partner Center documents its links
// as "http://api.partner.microsoft.com/v1.0/referrals?$skiptoken=…": another
// scheme and no /engagements segment. So a link on the configured host (a
// relative one is resolved against the base URL) whose path ends in
// /referrals is followed at the configured collection ({base}/referrals)
// with the link's query, over the configured scheme: an http link is sent
// over https when the base URL is https, never the other way round. Any
// other link is refused with an error wrapping ErrInvalidArgument and
// ErrForeignNextLink.
func (c *Client) NextPage(ctx context.Context, nextLink string) (*ReferralPage, error) {
	u, err := c.resolveNextLink(nextLink)
	if err != nil {
		return nil, err
	}
	return c.page(ctx, u)
}

// ErrForeignNextLink marks an @odata.nextLink the client refused to follow
// because it does not name the referrals collection on the configured host.
var ErrForeignNextLink = errors.New("partnercenter: next link refused")

func (c *Client) resolveNextLink(nextLink string) (string, error) {
	if strings.TrimSpace(nextLink) == "" {
		return "", fmt.Errorf("%w: empty next link", ErrInvalidArgument)
	}
	base, err := url.Parse(c.baseURL + "/")
	if err != nil {
		return "", fmt.Errorf("partnercenter: base URL: %w", err)
	}
	ref, err := url.Parse(strings.TrimSpace(nextLink))
	if err != nil {
		return "", fmt.Errorf("%w: next link is not a URL: %v", ErrInvalidArgument, err)
	}
	u := base.ResolveReference(ref)
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %w: @odata.nextLink %s://%s%s %s; only links to %s/referrals are followed",
			ErrInvalidArgument, ErrForeignNextLink, u.Scheme, u.Host, u.EscapedPath(), why, c.baseURL)
	}
	switch {
	case u.User != nil:
		return refuse("carries credentials")
	case !strings.EqualFold(u.Scheme, base.Scheme) && !(strings.EqualFold(u.Scheme, "http") && strings.EqualFold(base.Scheme, "https")):
		return refuse("uses another scheme than " + base.Scheme)
	case !sameHost(u, base):
		return refuse("is not on the API host " + base.Host)
	}
	segs := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if len(segs) == 0 || !strings.EqualFold(segs[len(segs)-1], "referrals") {
		return refuse("is not the referrals collection")
	}
	out := c.referralsURL()
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// sameHost reports whether two URLs name the same host and port, a missing
// port standing for its scheme's default.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" && !(p == "80" && strings.EqualFold(u.Scheme, "http")) && !(p == "443" && strings.EqualFold(u.Scheme, "https")) {
		return p
	}
	return ""
}

func (c *Client) page(ctx context.Context, u string) (*ReferralPage, error) {
	resp, err := c.do(ctx, call{method: http.MethodGet, url: u})
	if err != nil {
		return nil, err
	}
	var p ReferralPage
	if err := c.replies.DecodeJSON(resp, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Referrals iterates over every referral matching p, following nextLinks.
// It stops at the first error, which it yields.
func (c *Client) Referrals(ctx context.Context, p ListParams) iter.Seq2[Referral, error] {
	return func(yield func(Referral, error) bool) {
		page, err := c.ListReferrals(ctx, p)
		seen := map[string]bool{}
		for {
			if err != nil {
				yield(Referral{}, err)
				return
			}
			for _, r := range page.Value {
				if !yield(r, nil) {
					return
				}
			}
			next := page.NextLink
			if next == "" || seen[next] {
				return
			}
			seen[next] = true
			page, err = c.NextPage(ctx, next)
		}
	}
}

// GetReferral returns one referral (GET /referrals/{id}). Its ETag comes from
// the body's eTag, or the ETag header when the body has none.
func (c *Client) GetReferral(ctx context.Context, id string) (*Referral, error) {
	u, err := c.referralURL(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, call{method: http.MethodGet, url: u})
	if err != nil {
		return nil, err
	}
	ref, err := c.decodeReferral(http.MethodGet, resp)
	if err == nil && ref == nil {
		err = &upstream.BodyError{Connector: connectorName, Status: resp.StatusCode, Kind: upstream.BodyEmpty, Err: upstream.ErrEmptyBody}
	}
	return ref, err
}

// CreateReferral creates a referral (POST /referrals). Type, CustomerProfile,
// Consent and Details are required upstream. requestID is sent as
// MS-RequestId; pass the same one when retrying a create whose outcome is
// unknown (Partner Center treats a repeated MS-RequestId as the same
// request), or "" for a new one.
//
// An error after the request may have reached Partner Center is an
// *upstream.SentError (see upstream.OutcomeUnknown); a 2xx reply without a
// referral with an id is one too, wrapping an *upstream.BodyError, since
// the referral was created but is not known.
func (c *Client) CreateReferral(ctx context.Context, r Referral, requestID string) (*Referral, error) {
	rep, err := c.do(ctx, call{method: http.MethodPost, url: c.referralsURL(), body: r, requestID: requestID})
	if err != nil {
		return nil, err
	}
	ref, err := c.decodeReferral(http.MethodPost, rep)
	if err == nil && (ref == nil || ref.ID == "") {
		kind, cause := upstream.BodyEmpty, upstream.ErrEmptyBody
		if ref != nil {
			kind, cause = upstream.BodyUnexpected, errors.New("the created referral has no id")
		}
		err = upstream.Sent(http.MethodPost, &upstream.BodyError{Connector: connectorName, Status: rep.StatusCode, Kind: kind, Err: cause})
		ref = nil
	}
	return ref, err
}

// PatchReferral applies JSON Patch operations (PATCH /referrals/{id}) and
// asks for the updated referral back. ifMatch, when set, is sent as If-Match
// (a stale one gets an *upstream.Error with Status 412). It returns nil
// without error when Partner Center answers 204 No Content; re-read the
// referral then. Check ops with CheckPatch first.
func (c *Client) PatchReferral(ctx context.Context, id string, ops []PatchOp, ifMatch string) (*Referral, error) {
	u, err := c.referralURL(id)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("%w: a patch needs at least one operation", ErrInvalidArgument)
	}
	resp, err := c.do(ctx, call{method: http.MethodPatch, url: u, body: ops, ifMatch: ifMatch, prefer: "return=representation"})
	if err != nil {
		return nil, err
	}
	return c.decodeReferral(http.MethodPatch, resp)
}

// UpdateReferral replaces a referral (PUT /referrals/{id}). Deprecated
// upstream in favour of PatchReferral. ifMatch is required; without it no
// request is sent.
func (c *Client) UpdateReferral(ctx context.Context, id string, r Referral, ifMatch string) (*Referral, error) {
	u, err := c.referralURL(id)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(ifMatch) == "" {
		return nil, fmt.Errorf("%w: updating a referral needs its eTag (If-Match)", ErrInvalidArgument)
	}
	rep, err := c.do(ctx, call{method: http.MethodPut, url: u, body: r, ifMatch: ifMatch})
	if err != nil {
		return nil, err
	}
	return c.decodeReferral(http.MethodPut, rep)
}

// dealRegistrationValue is the value of the "add /registrations/-" patch.
type dealRegistrationValue struct {
	Type            string           `json:"type"`
	SolutionDetails []SolutionDetail `json:"solutionDetails,omitempty"`
	Contract        *Contract        `json:"contract,omitempty"`
}

// AddDealRegistration adds a deal registration to a referral: a PATCH with
// [{"op":"add","path":"/registrations/-","value":{type, solutionDetails,
// contract}}]. Only those fields of reg are sent; Type defaults to
// AzureIPCoSell. Results are as for PatchReferral. Change a registration
// later with PatchReferral and RegistrationPatchPaths.
func (c *Client) AddDealRegistration(ctx context.Context, id string, reg Registration, ifMatch string) (*Referral, error) {
	v := dealRegistrationValue{Type: nonEmpty(reg.Type, RegistrationTypeAzureIPCoSell), SolutionDetails: reg.SolutionDetails, Contract: reg.Contract}
	return c.PatchReferral(ctx, id, []PatchOp{{Op: OpAdd, Path: "/registrations/-", Value: v}}, ifMatch)
}

// decodeReferral reads a referral reply to a request with the given
// method; nil when the reply has no body (204 No Content). Its ETag comes
// from the body's eTag, else the ETag header. A write's decode error is an
// *upstream.SentError: the write was carried out.
func (c *Client) decodeReferral(method string, resp *http.Response) (*Referral, error) {
	var ref Referral
	if err := c.replies.DecodeJSON(resp, &ref); err != nil {
		if errors.Is(err, upstream.ErrEmptyBody) {
			return nil, nil
		}
		return nil, upstream.Sent(method, err)
	}
	if ref.ETag == "" {
		ref.ETag = c.replies.Redact(resp.Header.Get("ETag"))
	}
	return &ref, nil
}
