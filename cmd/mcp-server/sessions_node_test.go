package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
)

// envRequireNode, set to 1, makes the TypeScript SDK test fail instead of
// skipping when node or npm is missing or the SDK cannot be installed.
const envRequireNode = "COSELL_REQUIRE_NODE"

// npmInstallTimeout bounds the SDK's installation (a download).
const npmInstallTimeout = 5 * time.Minute

func skipWithoutNode(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(envRequireNode) == "1" {
		t.Fatal(msg)
	}
	t.Skipf("%s (set %s=1 to fail instead of skipping)", msg, envRequireNode)
}

// typeScriptSDK installs @modelcontextprotocol/sdk into a temporary
// directory (never into the repository) beside a copy of the balancer
// client script, and returns the node binary and the script's path.
func typeScriptSDK(t *testing.T) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipWithoutNode(t, "node is not installed: the TypeScript SDK test needs Node.js 20+")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skipWithoutNode(t, "npm is not installed: the TypeScript SDK test needs it to install @modelcontextprotocol/sdk")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), npmInstallTimeout)
	defer cancel()
	// Offline, fail fast rather than retry for minutes; use the cache when
	// it has the package.
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error",
		"--prefer-offline", "--fetch-retries=1", "--fetch-timeout=30000", "@modelcontextprotocol/sdk")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		skipWithoutNode(t, "npm install @modelcontextprotocol/sdk failed (no network?): %v\n%s", err, out)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "balancer", "client.mjs"))
	require.NoError(t, err)
	script = filepath.Join(dir, "client.mjs") // beside node_modules, where its imports resolve
	require.NoError(t, os.WriteFile(script, src, 0o600))
	return node, script
}

// replicaProcess is the binary serving HTTP, which a test may kill.
type replicaProcess struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	logs   *lockedWriter
}

// startReplicaProcess runs the binary with --http on a free port and args,
// on the sandboxes, and waits until it serves.
func startReplicaProcess(t *testing.T, args ...string) *replicaProcess {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), append([]string{"--http", addr}, args...)...)
	cmd.Env = append(sandboxEnv(), "COSELL_STATE_DIR="+stateDir(t))
	p := &replicaProcess{cmd: cmd, base: "http://" + addr, exited: make(chan struct{}), logs: &lockedWriter{}}
	cmd.Stderr = p.logs
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(interruptSignal())
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("replica %s log:\n%s", p.base, p.logs.String())
		}
	})
	awaitServing(t, p.logs, addr, p.exited)
	return p
}

// kill ends the process at once (SIGKILL), as a crash would.
func (p *replicaProcess) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

// The official TypeScript SDK client (StreamableHTTPClientTransport)
// connects through a round-robin balancer to three replicas of the binary
// sharing one PostgreSQL, makes tool calls, and carries on after the
// replica that opened its session is killed.
func TestTypeScriptSDKThroughBalancer(t *testing.T) {
	node, script := typeScriptSDK(t)
	dsn := pgtest.Start(t)
	keys := teamKeysFile(t)
	replicas := make([]*replicaProcess, 3)
	bases := make([]string, len(replicas))
	for i := range replicas {
		replicas[i] = startReplicaProcess(t, "--api-keys-file", keys, "--database-url", dsn, "--budget-limit", "100000")
		bases[i] = replicas[i].base
	}
	lb := newRoundRobin(t, bases...)

	cmd := exec.Command(node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "MCP_URL="+lb.URL(), "MCP_TOKEN=alice-key")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100) // the script writes a handful
	exited := make(chan struct{})   // closed once the script has exited
	var exitErr error
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exitErr = cmd.Wait() // once stdout is read to its end
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("node client stderr:\n%s", stderr.String())
		}
	})
	// next returns the script's next line with the given prefix; the hang
	// guard only turns a hang into a failure.
	next := func(prefix string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			require.True(t, ok, "the node client stopped before %q:\n%s", prefix, stderr.String())
			rest, found := strings.CutPrefix(line, prefix)
			require.True(t, found, "node client said %q, want %q…:\n%s", line, prefix, stderr.String())
			return strings.TrimSpace(rest)
		case <-time.After(hangGuard):
			t.Fatalf("no %q from the node client:\n%s", prefix, stderr.String())
			return ""
		}
	}

	session := next("SESSION ")
	require.NotEmpty(t, session)
	assert.Equal(t, "20", next("PHASE1 "), "tool calls before the kill")

	creator := lb.creatorOf(t, session)
	lb.markDown(creator)
	replicas[creator].kill(t)
	_, err = io.WriteString(stdin, "continue\n")
	require.NoError(t, err)

	assert.Equal(t, "20", next("PHASE2 "), "tool calls after the replica that opened the session died")
	next("DONE")
	select {
	case <-exited:
		require.NoError(t, exitErr, "node client:\n%s", stderr.String())
	case <-time.After(hangGuard):
		t.Fatal("the node client did not exit")
	}

	// The client ended its session: it is gone on every live replica.
	for i, base := range bases {
		if i == creator {
			continue
		}
		status, _, body := rawMCP(t, base, http.MethodPost, "alice-key", session, whoamiCall)
		assert.Equal(t, http.StatusNotFound, status, "replica %d: %s", i, body)
	}
}
