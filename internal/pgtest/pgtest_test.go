package pgtest_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, dsn, sql string, args ...any) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

func exec(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func TestStartGivesFreshDatabases(t *testing.T) {
	t.Parallel()
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a == b {
		t.Fatalf("two Start calls gave the same DSN %s", a)
	}
	exec(t, a, "CREATE TABLE x (n int)")
	exec(t, a, "INSERT INTO x VALUES (1)")
	if n, err := query(t, a, "SELECT count(*) FROM x"); err != nil || n != 1 {
		t.Fatalf("count in a = %d, %v; want 1", n, err)
	}
	if n, err := query(t, b, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'"); err != nil || n != 0 {
		t.Fatalf("table x in b: %d, %v; want none", n, err)
	}
	if n, err := query(t, a, "SELECT CASE WHEN current_setting('fsync') = 'off' THEN 1 ELSE 0 END"); err != nil || n != 1 {
		t.Fatalf("fsync off: %d, %v", n, err)
	}
	if n, err := query(t, a, "SELECT CASE WHEN current_setting('listen_addresses') = '127.0.0.1' THEN 1 ELSE 0 END"); err != nil || n != 1 {
		t.Fatalf("listen on loopback only: %d, %v", n, err)
	}
}

func TestServerStopKillStart(t *testing.T) {
	t.Parallel()
	s := pgtest.StartServer(t)
	dsn := s.NewDatabase(t)
	exec(t, dsn, "CREATE TABLE kept (n int)")
	exec(t, dsn, "INSERT INTO kept VALUES (1)")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, dsn, "SELECT 1"); err == nil {
		t.Fatal("query succeeded on a stopped server")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, dsn, "INSERT INTO kept VALUES (2) RETURNING n"); err != nil {
		t.Fatal(err)
	}

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, dsn, "SELECT 1"); err == nil {
		t.Fatal("query succeeded on a killed server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if n, err := query(t, dsn, "SELECT count(*) FROM kept"); err != nil || n != 2 {
		t.Fatalf("rows kept across stop and crash: %d, %v; want 2", n, err)
	}
}

func TestServerRemovedOnClose(t *testing.T) {
	t.Parallel()
	s, err := pgtest.NewServer()
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv(pgtest.EnvRequire) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dsn := s.DSN()
	if _, err := query(t, dsn, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	dir := s.DataDir()
	s.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after Close: %v", dir, err)
	}
	if _, err := query(t, dsn, "SELECT 1"); err == nil {
		t.Fatal("query succeeded after Close")
	}
}
