package main

import (
	"context"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadOnlyYesFromTheEnvironment: COSELL_READ_ONLY=yes gives a server
// whose tool list has no tool that changes data.
func TestReadOnlyYesFromTheEnvironment(t *testing.T) {
	t.Setenv("COSELL_READ_ONLY", "yes")
	c := sandboxClient(t, nil, nil)
	listed, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	writes := map[string]bool{}
	for _, tool := range staticRegistry().Tools() {
		if !tool.ReadOnly {
			writes[tool.Name] = true
		}
	}
	require.NotEmpty(t, writes)
	require.NotEmpty(t, listed.Tools)
	for _, tool := range listed.Tools {
		assert.False(t, writes[tool.Name], "%s changes data but is listed with COSELL_READ_ONLY=yes", tool.Name)
	}
}

// TestInvalidVariableRefusesToStart: a value the flag would refuse stops
// the server before it starts, naming the variable and the accepted forms.
func TestInvalidVariableRefusesToStart(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	for _, tc := range []struct{ env, value, want string }{
		{"COSELL_READ_ONLY", "maybe", `COSELL_READ_ONLY=maybe: "maybe" is not a boolean: use true or false (1/0, yes/no, on/off)`},
		{"COSELL_BUDGET_WINDOW", "90", "COSELL_BUDGET_WINDOW=90: a duration needs a unit, e.g. 90s or 2m"},
		{"COSELL_BUDGET_LIMIT", "lots", "COSELL_BUDGET_LIMIT=lots: want a whole number, e.g. 100"},
		{"COSELL_BUDGET_LIMIT", "0", "--budget-limit (COSELL_BUDGET_LIMIT) must be at least 1"},
		{"COSELL_LOG_LEVEL", "verbose", `--log-level (COSELL_LOG_LEVEL) "verbose": want debug, info, warn or error`},
		{"WORKSPAN_ENV", "staging", `--workspan-env (WORKSPAN_ENV) must be production or sandbox, not "staging"`},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			var stdout, stderr strings.Builder
			err := run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.Empty(t, stdout.String(), "nothing was served")
		})
	}
}

// TestEveryVariableParsesLikeItsFlag runs every boolean, integer and
// duration flag of the server through its variable and through the flag:
// the same values are accepted with the same result, and the same values
// are refused, the variable's error naming it.
func TestEveryVariableParsesLikeItsFlag(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	type value struct {
		in   string
		want any // nil: refused
		msg  string
	}
	fs := newFlagSet("serve")
	bindFlags(fs, new(Config))
	strictFlags(fs)
	kinds := map[string]int{}
	fs.VisitAll(func(f *flag.Flag) {
		env := flagEnv(f)
		kind := flagKind(f)
		var values []value
		switch kind {
		case "":
			for _, in := range []string{"true", "TRUE", "1", "yes", "Yes", "on", "ON"} {
				values = append(values, value{in: in, want: true})
			}
			for _, in := range []string{"false", "False", "0", "no", "NO", "off", "Off"} {
				values = append(values, value{in: in, want: false})
			}
			for _, in := range []string{"maybe", "2", "t", "enabled"} {
				values = append(values, value{in: in, msg: "is not a boolean: use true or false (1/0, yes/no, on/off)"})
			}
		case "int":
			def, err := strconv.Atoi(f.DefValue)
			require.NoError(t, err)
			values = []value{
				{in: strconv.Itoa(def + 1), want: def + 1},
				{in: " " + strconv.Itoa(def+2) + " ", want: def + 2},
				{in: "lots", msg: "want a whole number, e.g. 100"},
				{in: "1.5", msg: "want a whole number, e.g. 100"},
				{in: "10s", msg: "want a whole number, e.g. 100"},
				{in: "0x10", msg: "want a whole number, e.g. 100"},
			}
		case "duration":
			values = []value{
				{in: "2m", want: 2 * time.Minute},
				{in: "90s", want: 90 * time.Second},
				{in: "1h30m", want: 90 * time.Minute},
				{in: "90", msg: "a duration needs a unit, e.g. 90s or 2m"},
				{in: "1.5", msg: "a duration needs a unit, e.g. 1.5s or 2m"},
				{in: "ten minutes", msg: "want a duration with a unit, e.g. 90s, 2m or 1h30m"},
			}
		default:
			return
		}
		require.NotEmpty(t, env, "--%s has no environment variable", f.Name)
		kinds[kind]++
		for _, v := range values {
			t.Run(env+"="+v.in, func(t *testing.T) {
				t.Setenv(env, v.in)
				_, fromEnv, envErr := parseConfig("test", nil, io.Discard, nil)
				t.Setenv(env, "")
				_, fromFlag, flagErr := parseConfig("test", []string{"--" + f.Name + "=" + v.in}, io.Discard, nil)
				if v.want == nil {
					require.Error(t, envErr)
					require.Error(t, flagErr)
					assert.True(t, strings.HasPrefix(envErr.Error(), env+"="+v.in+": "), "%v does not name the variable", envErr)
					assert.Contains(t, envErr.Error(), v.msg)
					assert.Contains(t, flagErr.Error(), v.msg)
					return
				}
				require.NoError(t, envErr)
				require.NoError(t, flagErr)
				assert.Equal(t, v.want, fromEnv.Lookup(f.Name).Value.(flag.Getter).Get())
				assert.Equal(t, v.want, fromFlag.Lookup(f.Name).Value.(flag.Getter).Get())
			})
		}
	})
	// The table covers the variables the server has, not a chosen few.
	assert.GreaterOrEqual(t, kinds[""], 3, "boolean variables")
	assert.GreaterOrEqual(t, kinds["int"], 4, "integer variables")
	assert.GreaterOrEqual(t, kinds["duration"], 6, "duration variables")
}

// TestCommandLineWinsOverTheEnvironment: a variable sets its flag's
// default, the command line overrides it, and an empty variable is unset.
func TestCommandLineWinsOverTheEnvironment(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	t.Setenv("COSELL_BUDGET_LIMIT", "50")
	t.Setenv("COSELL_READ_ONLY", "on")
	cfg, _, err := parseConfig("test", nil, io.Discard, nil)
	require.NoError(t, err)
	assert.Equal(t, 50, cfg.BudgetLimit)
	assert.True(t, cfg.ReadOnly)

	cfg, _, err = parseConfig("test", []string{"--budget-limit", "70", "--read-only=false"}, io.Discard, nil)
	require.NoError(t, err)
	assert.Equal(t, 70, cfg.BudgetLimit)
	assert.False(t, cfg.ReadOnly)

	t.Setenv("COSELL_BUDGET_LIMIT", "")
	t.Setenv("COSELL_METRICS_AUTH", "")
	cfg, _, err = parseConfig("test", nil, io.Discard, nil)
	require.NoError(t, err)
	assert.Equal(t, 100, cfg.BudgetLimit, "an empty variable leaves the default")
	assert.True(t, cfg.MetricsAuth)

	t.Setenv("COSELL_METRICS_AUTH", "off")
	cfg, _, err = parseConfig("test", nil, io.Discard, nil)
	require.NoError(t, err)
	assert.False(t, cfg.MetricsAuth)
}

// TestErrorsNameWhereTheValueCameFrom: a check after parsing names the
// variable only when the value came from it.
func TestErrorsNameWhereTheValueCameFrom(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	_, _, err := parseConfig("test", []string{"--budget-limit", "0"}, io.Discard, nil)
	require.EqualError(t, err, "--budget-limit must be at least 1")
	t.Setenv("COSELL_BUDGET_LIMIT", "0")
	_, _, err = parseConfig("test", nil, io.Discard, nil)
	require.EqualError(t, err, "--budget-limit (COSELL_BUDGET_LIMIT) must be at least 1")
	_, _, err = parseConfig("test", []string{"--budget-limit", "-1"}, io.Discard, nil)
	require.EqualError(t, err, "--budget-limit must be at least 1", "the command line's value is the one refused")
}

// TestBooleanFlagsStandAlone: a strict boolean flag still needs no value.
func TestBooleanFlagsStandAlone(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	cfg, fs, err := parseConfig("test", []string{"--read-only", "--include-deprecated", "rest"}, io.Discard, nil)
	require.NoError(t, err)
	assert.True(t, cfg.ReadOnly)
	assert.True(t, cfg.IncludeDeprecated)
	assert.Equal(t, []string{"rest"}, fs.Args())
}

// TestUnknownFlagPointsToTheHelp: a flag the command does not have is a
// usage error that says where the flags are listed.
func TestUnknownFlagPointsToTheHelp(t *testing.T) {
	err := run(context.Background(), []string{"tools", "--bogus"}, strings.NewReader(""), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "flag provided but not defined: -bogus (mcp-server help tools lists the flags)", err.Error())
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "0.0": 0, "0s": 0, " 5m ": 5 * time.Minute, "250ms": 250 * time.Millisecond} {
		got, err := parseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"90":  "a duration needs a unit, e.g. 90s or 2m",
		"+90": "a duration needs a unit, e.g. 90s or 2m",
		"-5":  "a duration needs a unit, e.g. -5s or 2m",
		".5":  "a duration needs a unit, e.g. .5s or 2m",
		"5x":  "want a duration with a unit, e.g. 90s, 2m or 1h30m",
		"":    "want a duration with a unit, e.g. 90s, 2m or 1h30m",
	} {
		_, err := parseDuration(in)
		require.Error(t, err, in)
		assert.Equal(t, want, err.Error(), in)
	}
}
