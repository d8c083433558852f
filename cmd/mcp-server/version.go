package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// unsetVersion is version's value when the build did not set it.
const unsetVersion = "dev"

func init() {
	info, _ := debug.ReadBuildInfo()
	version = resolveVersion(version, info)
}

// resolveVersion says which code a binary is: the -ldflags "-X
// main.version=…" value when the build set one; else the main module's
// version from the build info (a release or pseudo-version with go install
// MODULE@VERSION, and with go build in a git checkout since Go 1.24, "+dirty"
// when it had uncommitted changes); else the VCS revision the go command
// stamped ("dev-<12 hex>", "+dirty" when modified); else "dev".
func resolveVersion(ldflags string, info *debug.BuildInfo) string {
	if ldflags != "" && ldflags != unsetVersion {
		return ldflags
	}
	if info == nil {
		return unsetVersion
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return unsetVersion
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := unsetVersion + "-" + rev
	if modified {
		v += "+dirty"
	}
	return v
}

// printVersion prints the version line of mcp-server version.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "mcp-server %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
