package partnercenter

import (
	"strings"
	"sync"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
)

// maxVersions bounds the version cache.
const maxVersions = 10000

// version is what the state machine needs of one referral version. A
// version is immutable (a change yields a new eTag), so it can be shared
// by every session without hiding another agent's write.
type version struct {
	Status, Substatus string
	Registrations     int
}

// versionCache remembers referral versions seen in any reply, keyed by id
// and eTag, so a write that names a known version is checked with no
// upstream call.
type versionCache struct {
	mu sync.Mutex
	m  map[string]version
}

func newVersionCache() *versionCache { return &versionCache{m: map[string]version{}} }

func versionKey(id, etag string) string { return id + "\x00" + normalizeETag(etag) }

// normalizeETag strips quotes and a weak prefix so header and body forms compare equal.
func normalizeETag(e string) string {
	e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
	return strings.Trim(e, `"`)
}

func (c *versionCache) remember(r *pc.Referral) {
	if r == nil || r.ID == "" || r.ETag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxVersions {
		clear(c.m)
	}
	c.m[versionKey(r.ID, r.ETag)] = version{Status: r.Status, Substatus: r.Substatus, Registrations: len(r.Registrations)}
}

func (c *versionCache) lookup(id, etag string) (version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[versionKey(id, etag)]
	return v, ok
}
