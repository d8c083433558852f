package pipedrive

import (
	"context"
	"sync"
	"time"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
)

// userDirectory caches the company's users with their e-mail addresses
// (GET /v1/users), for full deal details: one upstream call per refTTL on
// the client's clock, shared by concurrent callers.
type userDirectory struct {
	client *pd.Client

	mu    sync.Mutex // held across a load: concurrent callers wait for it
	users map[int64]pd.User
	at    time.Time
}

func newUserDirectory(c *pd.Client) *userDirectory { return &userDirectory{client: c} }

// directory returns the user directory of client c.
func (s *service) directory(c *pd.Client) *userDirectory { return s.users.Get(c) }

// get returns the users by id, loading them when stale. E-mails are a
// nicety: when a load fails, the last users (or none) are returned.
func (u *userDirectory) get(ctx context.Context) map[int64]pd.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.client.Clock().Now()
	if !u.at.IsZero() && now.Sub(u.at) < refTTL {
		return u.users
	}
	list, err := u.client.Users(ctx)
	if err != nil {
		return u.users
	}
	users := make(map[int64]pd.User, len(list))
	for _, us := range list {
		users[us.ID] = us
	}
	u.users, u.at = users, now
	return users
}
