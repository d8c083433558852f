package triggers

// abandon ends the manager as a crash would: its goroutines stop, but its
// leases are not given up (they expire).
func (m *Manager) abandon() {
	m.mu.Lock()
	m.cancel()
	m.pollers = map[string]pollRun{}
	m.mu.Unlock()
	m.wg.Wait()
}
