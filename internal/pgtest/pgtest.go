// Package pgtest starts private, throw-away PostgreSQL servers for tests.
//
// A server is a fresh cluster (initdb) in a temporary directory, listening
// on a free port of 127.0.0.1 only (no unix socket), tuned for speed rather
// than durability (fsync=off). When the test process runs as root, the
// PostgreSQL binaries run as the user "postgres" (or "nobody" if there is
// none), since initdb and postgres refuse to run as root. The server is
// stopped and its directory removed when the test (or, with Main, the test
// binary) ends, and the kernel stops it should the test binary die first.
//
// Start hands each test a fresh, empty database. With Main in the package's
// TestMain, every test of the package gets its database on one server,
// started on first use; without it, each test starts a server of its own.
// A test that stops or restarts the server (to see how its code copes with
// the database going away) uses StartServer, which is always its own.
//
// The binaries are looked up in PATH, then in /usr/lib/postgresql/*/bin
// (highest version first). Without them the test is skipped, unless the
// environment variable COSELL_REQUIRE_POSTGRES is 1: then it fails.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvRequire names the environment variable that, set to 1, makes a test
// fail instead of skipping when no PostgreSQL binaries are found (for CI).
const EnvRequire = "COSELL_REQUIRE_POSTGRES"

// ErrNoPostgres is returned by NewServer when no PostgreSQL binaries are
// found.
var ErrNoPostgres = errors.New("pgtest: PostgreSQL binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql)")

// ReadyTimeout bounds how long a server may take to accept connections
// after it is started.
const ReadyTimeout = 30 * time.Second

// Superuser is the name of the cluster's superuser (trust authentication,
// no password).
const Superuser = "postgres"

// Server is one private PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Server struct {
	binDir  string
	root    string // temporary directory: data dir, log
	dataDir string
	logPath string
	cred    *syscall.Credential // nil: run as the current user
	port    int

	dbSeq atomic.Int64

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	closed bool
}

// StartServer starts a private server for t alone, and stops and removes it
// when t ends. It skips t when PostgreSQL is not installed (see EnvRequire).
func StartServer(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log (tail):\n%s", s.LogTail(4096))
		}
		s.Close()
	})
	return s
}

// NewServer creates and starts a private server. The caller must Close it.
// It returns an error wrapping ErrNoPostgres when PostgreSQL is not
// installed.
func NewServer() (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := runCredential()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(tempBase(cred), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{
		binDir:  binDir,
		root:    root,
		dataDir: filepath.Join(root, "data"),
		logPath: filepath.Join(root, "postgres.log"),
		cred:    cred,
	}
	if err := s.init(); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return s, nil
}

func (s *Server) init() error {
	if s.cred != nil {
		if err := os.Chown(s.root, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := os.Chmod(s.root, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	cmd := s.command("initdb", "-D", s.dataDir, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	var err error
	for range 5 { // another process may take the free port before postgres binds it
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.Start(); err == nil || !strings.Contains(err.Error(), "could not bind") {
			return err
		}
	}
	return err
}

// command returns a command running the PostgreSQL binary name as the
// server's user, in the server's directory, with a minimal environment.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.root
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.root,
		"LANG=C", "LC_ALL=C", "TZ=UTC",
	}
	// The kernel stops the server if the test binary dies without Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

// Start starts the server if it is not running (after Stop or Kill), on the
// same port and data, and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("pgtest: server closed")
	}
	if s.runningLocked() {
		return nil
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := s.command("postgres", "-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", // TCP only
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "wal_level=minimal",
		"-c", "max_wal_senders=0",
		"-c", "jit=off",
		"-c", "max_parallel_workers_per_gather=0",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { // owned by the Server: ends when the process does
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := s.waitReady(exited); err != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		s.waitExitLocked(syscall.SIGKILL)
		return fmt.Errorf("%w\nserver log (tail):\n%s", err, s.LogTail(4096))
	}
	return nil
}

// waitReady polls a connection until the server accepts it, the process
// exits or ReadyTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.DSNFor("postgres"))
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = time.Second
	pause := time.NewTicker(50 * time.Millisecond)
	defer pause.Stop()
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			if strings.Contains(s.LogTail(4096), "could not bind") {
				return fmt.Errorf("pgtest: postgres exited: could not bind port %d", s.port)
			}
			return errors.New("pgtest: postgres exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready after %s: %w", ReadyTimeout, err)
		case <-pause.C:
		}
	}
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// waitExitLocked waits for the process to exit, sending it escalate if it
// has not within a minute.
func (s *Server) waitExitLocked(escalate syscall.Signal) {
	if s.cmd == nil {
		return
	}
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		_ = s.cmd.Process.Signal(escalate)
		<-s.exited
	}
	s.cmd = nil
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		s.cmd = nil
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.waitExitLocked(syscall.SIGKILL)
	return nil
}

// Stop shuts the server down cleanly ("fast" shutdown: sessions are ended,
// committed data is kept) and waits until it has exited. Start brings it
// back. Stopping a stopped server does nothing.
func (s *Server) Stop() error { return s.signal(syscall.SIGINT) }

// Kill shuts the server down as a crash would ("immediate" shutdown: no
// checkpoint; the next Start recovers from the WAL, so committed data is
// kept) and waits until it has exited.
func (s *Server) Kill() error { return s.signal(syscall.SIGQUIT) }

// Restart is Stop then Start.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Close stops the server and removes its directory. Calls after the first
// do nothing.
func (s *Server) Close() {
	_ = s.Kill()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = os.RemoveAll(s.root)
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DSN returns the URL of the server's "postgres" database, as the
// superuser.
func (s *Server) DSN() string { return s.DSNFor("postgres") }

// DSNFor returns the URL of database db on the server, as the superuser.
func (s *Server) DSNFor(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, db)
}

// CreateDatabase creates an empty database with a unique name derived from
// hint and returns its name.
func (s *Server) CreateDatabase(ctx context.Context, hint string) (string, error) {
	name := fmt.Sprintf("t%d_%s", s.dbSeq.Add(1), sanitize(hint))
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return name, nil
}

// DropDatabase drops database name, ending its sessions.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// NewDatabase creates a fresh database for t, dropped (if the server still
// runs) when t ends, and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	name, err := s.CreateDatabase(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.DropDatabase(ctx, name) // best effort: the cluster is thrown away anyway
	})
	return s.DSNFor(name)
}

// LogTail returns the last (at most) n bytes of the server's log.
func (s *Server) LogTail(n int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

var shared struct {
	main atomic.Bool
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the package's tests (m.Run) with one server shared by every
// Start, started on first use and removed at the end, and exits. Use it as
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.main.Store(true)
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	os.Exit(code)
}

// Start returns the DSN of a fresh, empty database for t, dropped when t
// ends: on the package's shared server under Main, else on a server of t's
// own. It skips t when PostgreSQL is not installed (see EnvRequire). Tests
// must not stop the shared server; StartServer gives one that may be.
func Start(t testing.TB) (dsn string) {
	t.Helper()
	if !shared.main.Load() {
		return StartServer(t).NewDatabase(t)
	}
	shared.once.Do(func() { shared.srv, shared.err = NewServer() })
	if shared.err != nil {
		skipOrFail(t, shared.err)
	}
	return shared.srv.NewDatabase(t)
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoPostgres) && os.Getenv(EnvRequire) != "1" {
		t.Skipf("%v (set %s=1 to fail instead of skipping)", err, EnvRequire)
	}
	t.Fatal(err)
}

// findBinDir returns the directory holding initdb and postgres: that of
// initdb in PATH (symbolic links resolved), else the highest version's
// /usr/lib/postgresql/<version>/bin.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func versionOf(binDir string) string { return filepath.Base(filepath.Dir(binDir)) }

// compareVersions compares dotted version strings numerically ("9.6" < "15").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// runCredential returns the credential the PostgreSQL binaries run with:
// nil when not root, else that of "postgres" or, failing that, "nobody".
func runCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("pgtest: running as root and neither user postgres nor nobody exists to run PostgreSQL as")
}

// tempBase returns the directory to create the server's directory in: the
// system's, unless the server runs as another user who cannot reach it;
// then /tmp.
func tempBase(cred *syscall.Credential) string {
	base := os.TempDir()
	if cred == nil {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sanitize turns a test name into a short identifier part.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

// DataDir returns the server's data directory (inside its temporary
// directory, removed by Close).
func (s *Server) DataDir() string { return s.dataDir }
