package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
)

// protectedResourcePath is where RFC 9728 metadata is served.
const protectedResourcePath = "/.well-known/oauth-protected-resource"

// httpAuth builds the HTTP transport's settings: bearer auth from hashed
// API keys and/or JWTs of a configured issuer. Binding beyond loopback
// requires one of them.
func httpAuth(cfg Config) (HTTPConfig, error) {
	hc := HTTPConfig{Addr: cfg.HTTPAddr, AllowedOrigins: cfg.AllowedOrigins, Extra: map[string]http.Handler{}, SessionIdleTTL: cfg.SessionIdleTTL}
	var auths []httpauth.Authenticator
	if cfg.APIKeysFile != "" {
		f, err := os.Open(cfg.APIKeysFile)
		if err != nil {
			return hc, fmt.Errorf("--api-keys-file: %w", err)
		}
		keys, err := httpauth.ParseAPIKeyFile(f)
		_ = f.Close()
		if err != nil {
			return hc, fmt.Errorf("--api-keys-file: %w", err)
		}
		a, err := httpauth.NewAPIKeys(keys)
		if err != nil {
			return hc, fmt.Errorf("--api-keys-file: %w", err)
		}
		auths = append(auths, a)
	}
	jwtSet := cfg.JWTIssuer != "" || cfg.JWTAudience != "" || cfg.JWTJWKSURL != ""
	if jwtSet {
		if cfg.JWTIssuer == "" || cfg.JWTAudience == "" || cfg.JWTJWKSURL == "" {
			return hc, errors.New("JWT auth needs --jwt-issuer, --jwt-audience and --jwt-jwks-url together")
		}
		a, err := httpauth.NewJWT(httpauth.JWTConfig{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, JWKSURL: cfg.JWTJWKSURL})
		if err != nil {
			return hc, err
		}
		auths = append(auths, a)
	}
	if len(auths) > 0 {
		resource := cfg.PublicHTTPURL() + "/mcp"
		metadataURL := cfg.PublicHTTPURL() + protectedResourcePath
		auth := httpauth.Any(auths...)
		hc.Auth = func(next http.Handler) http.Handler { return httpauth.Middleware(auth, metadataURL, next) }
		var servers []string
		if jwtSet {
			servers = []string{cfg.JWTIssuer}
		}
		hc.Extra[protectedResourcePath] = httpauth.ProtectedResourceMetadata(resource, servers, nil)
	}
	if !isLoopback(cfg.HTTPAddr) && hc.Auth == nil {
		return hc, fmt.Errorf("--http %s is reachable beyond this machine: configure authentication (--api-keys-file or --jwt-*), or bind to 127.0.0.1", cfg.HTTPAddr)
	}
	return hc, nil
}

// PublicHTTPURL is how clients reach the HTTP endpoint: --http-public-url
// when set (a proxy in front), else the bind address. OAuth metadata and
// challenges name the MCP resource by it.
func (c Config) PublicHTTPURL() string {
	if c.HTTPPublicURL != "" {
		return c.HTTPPublicURL
	}
	return "http://" + c.HTTPAddr
}
