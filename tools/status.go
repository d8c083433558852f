package tools

import "context"

// ConnectionInfo is one connector's connection as connection_status reports it.
type ConnectionInfo struct {
	Connector string `json:"connector"`
	// Mode is "sandbox" (the embedded fake) or "live".
	Mode     string `json:"mode" jsonschema:"enum=sandbox,enum=live"`
	Endpoint string `json:"endpoint"`
	// Account is who the credential belongs to, where the API tells.
	Account        string `json:"account,omitempty"`
	Budget         Budget `json:"budget"`
	LastError      string `json:"last_error,omitempty"`
	LastErrorAt    string `json:"last_error_at,omitempty"`
	ActiveTriggers int    `json:"active_triggers"`
}

// ConnectionStatus is the result of connection_status.
type ConnectionStatus struct {
	Connections []ConnectionInfo `json:"connections"`
}

// ConnectionStatusArgs takes no arguments.
type ConnectionStatusArgs struct{}

// ConnectionStatusTool reports every connector's connection; report
// gathers the facts (it may spend one call to learn the account).
func ConnectionStatusTool(report func(ctx context.Context) ([]ConnectionInfo, error)) Tool {
	return New(Spec{
		Name: "connection_status", Title: "Connection status", Toolset: ToolsetServer, Operation: "ConnectionStatus",
		ReadOnly: true, Idempotent: true,
		Description: "Per connector: sandbox or live, whose account, budget used and remaining, last upstream error, active triggers.",
	}, func(ctx context.Context, _ ConnectionStatusArgs) (ConnectionStatus, error) {
		infos, err := report(ctx)
		if infos == nil {
			infos = []ConnectionInfo{}
		}
		return ConnectionStatus{Connections: infos}, err
	})
}
