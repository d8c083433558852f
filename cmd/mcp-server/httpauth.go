package main

import "fmt"

// httpAuth builds the HTTP transport's settings; binding beyond loopback
// requires authentication.
func httpAuth(cfg Config) (HTTPConfig, error) {
	hc := HTTPConfig{Addr: cfg.HTTPAddr, AllowedOrigins: cfg.AllowedOrigins}
	if !isLoopback(cfg.HTTPAddr) && hc.Auth == nil {
		return hc, fmt.Errorf("--http %s is reachable beyond this machine: configure authentication, or bind to 127.0.0.1", cfg.HTTPAddr)
	}
	return hc, nil
}
