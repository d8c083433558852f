package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "9d752b5c0ffee1234567890abcdef1234567890a"
	for _, tc := range []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo
		want    string
	}{
		{"ldflags win", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, "v1.4.0"},
		{"go install MODULE@v1.3.0", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, "v1.3.0"},
		{"go build in a checkout", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130150000-9d752b5c0ffe+dirty"}, Settings: vcs(rev, "true")}, "v0.0.0-20261130150000-9d752b5c0ffe+dirty"},
		{"revision only", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "dev-9d752b5c0ffe"},
		{"modified revision", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "dev-9d752b5c0ffe+dirty"},
		{"no VCS", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "dev", nil, "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resolveVersion(tc.ldflags, tc.info))
		})
	}
}

// TestVersionForms: version, --version and -version print the same line.
func TestVersionForms(t *testing.T) {
	want := "mcp-server " + version + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"--read-only", "--version"}} {
		var out strings.Builder
		require.NoError(t, run(context.Background(), args, strings.NewReader(""), &out, io.Discard), "%v", args)
		assert.Equal(t, want, out.String(), "%v", args)
	}
}

// TestBuiltBinarySaysWhichCodeItIs builds the binary twice: with the
// version in -ldflags it prints that, and a plain go build in a git
// checkout prints the commit it was built from.
func TestBuiltBinarySaysWhichCodeItIs(t *testing.T) {
	dir := t.TempDir()
	versionOf := func(t *testing.T, bin string) string {
		out, err := exec.Command(bin, "--version").Output()
		require.NoError(t, err)
		return string(out)
	}

	tagged := filepath.Join(dir, "tagged")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7", "-o", tagged, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.HasPrefix(versionOf(t, tagged), "mcp-server v9.8.7 ("), versionOf(t, tagged))

	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the revision cannot be stamped", err)
	}
	plain := filepath.Join(dir, "plain")
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", plain, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := versionOf(t, plain)
	assert.Contains(t, got, strings.TrimSpace(string(head))[:12], "a plain go build names its commit")
	assert.NotContains(t, got, "mcp-server dev (")
}
