package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	envHelper        = "COSELL_STORE_TEST_HELPER"
	envHelperDB      = "COSELL_STORE_TEST_DB"
	envHelperRelaxed = "COSELL_STORE_TEST_RELAXED"
	crashURI         = "trigger://crash"
	crashReader      = "crash-reader"
	crashBatch       = 5
	// The helper is killed once it has acknowledged crashAcked events and
	// handed out crashRead of them.
	crashAcked = 300
	crashRead  = 50
)

// TestHelperProcess is not a test: TestCrashLosesNoAcknowledgedEvent runs
// the test binary again with envHelper set, and this function then appends
// to the database until it is killed. It prints one line per acknowledged
// fact on stdout:
//
//	A <seq> <key>   an appended event (Append returned)
//	R <seq>         an event handed out by ReadAndAdvance (it returned)
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "crash" {
		t.Skip("helper process for the crash test")
	}
	// Never outlive a parent that failed to kill us: the parent holds our
	// stdin open, so it reaches EOF when the parent is gone.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	s, err := Open(os.Getenv(envHelperDB), Options{RelaxedSync: os.Getenv(envHelperRelaxed) == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	if err := s.UpsertTrigger(ctx, Trigger{URI: crashURI, Kind: "test.crash", Active: true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	appender := newProgress()
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line: a kill can cut the stream only between
		// lines or leave an unterminated last line, which the parent
		// ignores.
		_, _ = os.Stdout.WriteString(line + "\n")
	}
	go func() {
		for {
			next := appender.next()
			evs, err := s.ReadAndAdvance(ctx, crashReader, crashURI, 7)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			for _, e := range evs {
				say(fmt.Sprintf("R %d", e.Seq))
			}
			if len(evs) == 0 {
				<-next // caught up: wait for the next append
			}
		}
	}()
	for i := 0; ; i++ {
		// Each batch also repeats a key of the previous batch.
		batch := newEvents("k", i*crashBatch, crashBatch)
		if i > 0 {
			batch = append(batch, NewEvent{Key: fmt.Sprintf("k%d", i*crashBatch-1)})
		}
		evs, err := s.AppendWithState(ctx, crashURI, batch, fmt.Appendf(nil, `{"batches":%d}`, i+1))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, e := range evs {
			say(fmt.Sprintf("A %d %s", e.Seq, e.Key))
		}
		appender.committed()
	}
}

// TestCrashLosesNoAcknowledgedEvent kills a process that is appending and
// reading (SIGKILL, no chance to clean up) and checks that every event it
// acknowledged is stored exactly once, that the high-water mark stored with
// the events matches them, and that the reader's cursor is past every event
// it was handed, so none is handed to it again.
//
// It runs with both synchronous settings: NORMAL, too, must survive a process
// kill (only power loss may cost it the latest commits).
func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	t.Run("synchronous=FULL", func(t *testing.T) { crashOnce(t, false) })
	t.Run("synchronous=NORMAL", func(t *testing.T) { crashOnce(t, true) })
}

func crashOnce(t *testing.T, relaxed bool) {
	path := tempDBPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=crash", envHelperDB+"="+path, envHelperRelaxed+"=0")
	if relaxed {
		cmd.Env[len(cmd.Env)-1] = envHelperRelaxed + "=1"
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	// Held open (cmd.Wait closes it): the helper exits when it sees EOF,
	// i.e. when this process is gone without having killed it.
	_, err = cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	acked := map[int64]string{}
	var read []int64
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && killed {
			break // an unterminated last line was cut by the kill: not acknowledged
		}
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			killed = true
			t.Fatalf("reading helper output: %v; helper stderr: %s", err, stderr.String())
		}
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "A" && f[0] != "R") {
			continue // test framework chatter
		}
		seq, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		switch f[0] {
		case "A":
			_, dup := acked[seq]
			require.False(t, dup, "seq %d acknowledged twice", seq)
			acked[seq] = f[2]
		case "R":
			read = append(read, seq)
		}
		// Kill once the helper is well into appending and reading; both
		// keep going until the kill lands.
		if !killed && len(acked) >= crashAcked && len(read) >= crashRead {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL
			killed = true
		}
	}
	werr := cmd.Wait()
	require.Error(t, werr, "the helper was killed, it did not exit")
	require.NotEmpty(t, acked)
	require.NotEmpty(t, read)
	t.Logf("helper acknowledged %d events and handed out %d before SIGKILL", len(acked), len(read))

	s := openAt(t, path, Options{})
	ctx := testCtx(t)
	stored := allEvents(t, s, crashURI)
	byseq := map[int64]string{}
	keys := map[string]bool{}
	for _, e := range stored {
		byseq[e.Seq] = e.Key
		assert.False(t, keys[e.Key], "key %s stored twice", e.Key)
		keys[e.Key] = true
	}
	for seq, key := range acked {
		assert.Equal(t, key, byseq[seq], "acknowledged seq %d", seq)
	}
	// At most the batch in flight at the kill is stored but unacknowledged.
	assert.LessOrEqual(t, len(stored)-len(acked), crashBatch)

	// The mark moved with the events: exactly crashBatch events a batch.
	tr, ok, err := s.Trigger(ctx, crashURI)
	require.NoError(t, err)
	require.True(t, ok)
	var st struct{ Batches int }
	require.NoError(t, json.Unmarshal(tr.State, &st))
	assert.Equal(t, st.Batches*crashBatch, len(stored))

	// Everything handed out before the kill was stored, ascending, once.
	assert.True(t, slices.IsSorted(read))
	assert.Len(t, slices.Compact(slices.Clone(read)), len(read))
	for _, seq := range read {
		_, ok := byseq[seq]
		assert.True(t, ok, "read seq %d is stored", seq)
	}
	cur, err := s.Cursor(ctx, crashReader, crashURI)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cur, read[len(read)-1])

	// Resuming the reader hands out only what it had not been handed, and
	// together with what it had, every stored event.
	rest, err := s.ReadAndAdvance(ctx, crashReader, crashURI, 0)
	require.NoError(t, err)
	for _, e := range rest {
		assert.Greater(t, e.Seq, read[len(read)-1])
	}
	got := append(slices.Clone(read), seqsOf(rest)...)
	// Events handed out whose "R" line the kill cut off are between the two.
	assert.Subset(t, seqsOf(stored), got)
	missing := len(stored) - len(got)
	assert.GreaterOrEqual(t, missing, 0)
	assert.LessOrEqual(t, missing, 7, "at most one in-flight ReadAndAdvance batch unreported")
}
