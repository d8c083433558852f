package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// AddDealsForTest adds n deals titled "<title> #1" … "<title> #n", each
// exactly as POST /api/v2/deals with only a title would (same handler, same
// defaults, ids in order), without the HTTP round trips and the burst limit.
// It returns their ids in ascending order. It is for tests that need a large
// burst of new deals quickly; it panics if the handler refuses one.
func (s *Server) AddDealsForTest(n int, title string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, n)
	for i := range n {
		buf, err := json.Marshal(map[string]string{"title": fmt.Sprintf("%s #%d", title, i+1)})
		if err != nil {
			panic(err)
		}
		req, err := http.NewRequest(http.MethodPost, "/api/v2/deals", bytes.NewReader(buf))
		if err != nil {
			panic(err)
		}
		if _, aerr := s.addDeal(req); aerr != nil {
			panic(aerr)
		}
		ids = append(ids, int64(s.nextDealID-1))
	}
	return ids
}
