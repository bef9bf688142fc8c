package imap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// imaptestExceptions are the scripts of Dovecot's imaptest that are
// allowed to fail, each with the reason; docs/IMAP-CONFORMANCE.md gives
// the RFC text behind each. Every other script must pass with no failed
// command.
var imaptestExceptions = map[string]string{
	// Extensions.
	"notify": "NOTIFY with MessageExpunge alone, or MessageNew alone, is BAD as RFC 5465 section 5 requires (imaptest expects OK)",
}

// imaptestResult is what one script's run reported.
type imaptestResult struct {
	script           string
	skipped          bool // a capability the script needs is not offered
	baseFail, base   int
	extFail, ext     int
	errors           string // imaptest's description of each failure
	crashed, timeout bool
}

func (r imaptestResult) failed() bool {
	return r.crashed || r.timeout || r.baseFail > 0 || r.extFail > 0
}

func (r imaptestResult) String() string {
	switch {
	case r.timeout:
		return "timeout"
	case r.crashed:
		return "did not finish"
	case r.skipped:
		return "not run: capability not offered"
	}
	return fmt.Sprintf("base %d/%d, ext %d/%d", r.base-r.baseFail, r.base, r.ext-r.extFail, r.ext)
}

// imaptestSetup finds the imaptest binary ($MAILAGENT_IMAPTEST, else
// PATH) and its scripts ($MAILAGENT_IMAPTEST_TESTS, else the "tests"
// directory beside the binary, as in imaptest's build tree). imaptest is
// not packaged in Debian and CI does not build it, so its absence skips
// the test even under MAILAGENT_INTEROP=1; docs/IMAP-CONFORMANCE.md says
// how to build it.
func imaptestSetup(t *testing.T) (bin string, scripts []string) {
	t.Helper()
	bin = os.Getenv("MAILAGENT_IMAPTEST")
	if bin == "" {
		p, err := exec.LookPath("imaptest")
		if err != nil {
			t.Skip("imaptest not found (set MAILAGENT_IMAPTEST; see docs/IMAP-CONFORMANCE.md); skipping conformance test")
		}
		bin = p
	}
	dir := os.Getenv("MAILAGENT_IMAPTEST_TESTS")
	if dir == "" {
		real, err := filepath.EvalSymlinks(bin)
		must(t, err)
		dir = filepath.Join(filepath.Dir(real), "tests")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("imaptest scripts: %v (set MAILAGENT_IMAPTEST_TESTS to imaptest's src/tests)", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.Contains(e.Name(), ".") {
			scripts = append(scripts, filepath.Join(dir, e.Name()))
		}
	}
	if only := os.Getenv("MAILAGENT_IMAPTEST_ONLY"); only != "" {
		scripts = slices.DeleteFunc(scripts, func(s string) bool {
			return !slices.Contains(strings.Split(only, ","), filepath.Base(s))
		})
	}
	if len(scripts) == 0 {
		t.Fatalf("no imaptest scripts in %s", dir)
	}
	return bin, scripts
}

var imaptestSummary = regexp.MustCompile(`(?m)^(base protocol|extensions): (\d+)/(\d+) individual commands failed$`)

// runImaptest runs one script against addr in a directory of its own
// (imaptest takes a directory), with the script's mbox beside it.
func runImaptest(t *testing.T, bin, script, addr, user, pass string) imaptestResult {
	t.Helper()
	name := filepath.Base(script)
	r := imaptestResult{script: name}
	dir := t.TempDir()
	for _, f := range []string{script, script + ".mbox", filepath.Join(filepath.Dir(script), "default.mbox")} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
	}
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host="+host, "port="+port, "user="+user, "pass="+pass, "test="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r.errors = stderr.String()
	if ctx.Err() != nil {
		r.timeout = true
		return r
	}
	// imaptest exits 1 when a command failed; only a missing summary
	// means the run itself broke.
	m := imaptestSummary.FindAllStringSubmatch(stdout.String(), -1)
	if len(m) != 2 {
		r.crashed = true
		r.errors += stdout.String() + fmt.Sprint(err)
		return r
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	r.baseFail, r.base = atoi(m[0][2]), atoi(m[0][3])
	r.extFail, r.ext = atoi(m[1][2]), atoi(m[1][3])
	// A script whose capability is missing runs no command.
	r.skipped = r.base+r.ext == 0 && r.baseFail+r.extFail == 0
	return r
}

// TestInteropImaptest runs every scripted test of Dovecot's imaptest
// against the server (one user, two connections where a script asks
// for them) and fails on any failed command of a script that is not a
// listed exception. With MAILAGENT_IMAPTEST_DOVECOT=1 the same scripts
// also run against a private Dovecot, and both columns are logged as
// the table docs/IMAP-CONFORMANCE.md records.
func TestInteropImaptest(t *testing.T) {
	t.Parallel()
	bin, scripts := imaptestSetup(t)
	st := newTestStack(t)
	_, addr := st.serve(st.options())

	var dovecot string
	if os.Getenv("MAILAGENT_IMAPTEST_DOVECOT") == "1" {
		root := t.TempDir()
		home := filepath.Join(root, "home")
		must(t, os.MkdirAll(filepath.Join(home, "Maildir"), 0o755))
		d := dovecottest.Start(t, dovecottest.Options{
			Root:      root,
			Protocols: []string{"imap"},
			Users:     map[string]string{"alice@local.example": testPassword},
			Home:      home,
		})
		d.ChownTree(t, home)
		dovecot = d.IMAP
	}

	var table strings.Builder
	fmt.Fprintf(&table, "| script | mailagent | Dovecot |\n| --- | --- | --- |\n")
	for _, s := range scripts {
		ours := runImaptest(t, bin, s, addr, "alice@local.example", testPassword)
		theirs := "not run"
		if dovecot != "" {
			r := runImaptest(t, bin, s, dovecot, "alice@local.example", testPassword)
			theirs = r.String()
			if r.failed() {
				t.Logf("Dovecot %s: %s\n%s", r.script, r, r.errors)
			}
		}
		fmt.Fprintf(&table, "| %s | %s | %s |\n", ours.script, ours, theirs)
		if !ours.failed() {
			if why, ok := imaptestExceptions[ours.script]; ok {
				t.Logf("%s passes but is listed as an exception (%s): remove it from imaptestExceptions", ours.script, why)
			}
			continue
		}
		if why, ok := imaptestExceptions[ours.script]; ok {
			t.Logf("%s: %s (exception: %s)\n%s", ours.script, ours, why, ours.errors)
			continue
		}
		t.Errorf("%s: %s\n%s", ours.script, ours, ours.errors)
	}
	t.Logf("imaptest results:\n%s", table.String())
}

// TestInteropImaptestStress runs imaptest's stress mode for a few
// seconds ($MAILAGENT_IMAPTEST_STRESS to change how many): ten sessions
// ($MAILAGENT_IMAPTEST_CLIENTS) of one user send random commands, pipelined, tracking the mailbox
// state each is told, and every 3 s all of them CHECK and compare their
// views (flags, keywords, modseqs, \Recent). Any "Error:" or panic of
// imaptest fails the test, and so does a run in which no checkpoint
// completed.
//
// The run's length is kept off a multiple of the checkpoint interval:
// when the run ends while a checkpoint completes, imaptest re-plans a
// session that has just logged out (its end-of-run LOGOUT leaves the
// plan it had) and stops on its own assertion (client_update_plan:
// plan_size == 0), whatever the server answered.
func TestInteropImaptestStress(t *testing.T) {
	t.Parallel()
	bin, scripts := imaptestSetup(t)
	secs := envCount(t, "MAILAGENT_IMAPTEST_STRESS", 7)
	clients := envCount(t, "MAILAGENT_IMAPTEST_CLIENTS", 10)
	const checkpoint = 3
	if secs%checkpoint == 0 {
		secs++
	}
	st := newTestStack(t)
	// Every session logs in from 127.0.0.1, often at once.
	st.auth.Throttle = auth.NewThrottle(auth.ThrottleConfig{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond, NetworkLimit: 2 * clients})
	opts := st.options()
	opts.MaxConnsPerUser = 1000
	_, addr := st.serve(opts)
	host, port, _ := strings.Cut(addr, ":")
	mbox := filepath.Join(filepath.Dir(scripts[0]), "default.mbox")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host="+host, "port="+port, "user=alice@local.example", "pass="+testPassword,
		"mbox="+mbox, "clients="+strconv.Itoa(clients), "msgs=20", "checkpoint="+strconv.Itoa(checkpoint), "secs="+strconv.Itoa(secs))
	out, err := cmd.CombinedOutput()
	t.Logf("imaptest stress output:\n%s", out)
	for l := range strings.SplitSeq(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Error:") || strings.HasPrefix(l, "Panic:") {
			t.Errorf("%s", l)
		}
	}
	totals := imaptestTotals(string(out))
	if totals == nil {
		t.Fatalf("imaptest printed no totals (%v)", err)
	}
	if totals["Logi"] == 0 || totals["ChkP"] == 0 {
		t.Errorf("logins %d, checkpoints %d: want both above 0", totals["Logi"], totals["ChkP"])
	}
}

// envCount returns the positive number in the environment variable
// name, or def when it is not set.
func envCount(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// imaptestTotals reads the counters of the "Totals:" block imaptest's
// stress mode ends with: a header of command names, then (after the
// percentage lines) one count per name.
func imaptestTotals(out string) map[string]int {
	_, block, ok := strings.Cut(out, "Totals:")
	if !ok {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) < 2 {
		return nil
	}
	names := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(names) {
			continue
		}
		counts := map[string]int{}
		for i, v := range f {
			n, err := strconv.Atoi(v)
			if err != nil {
				counts = nil
				break
			}
			counts[names[i]] = n
		}
		if counts != nil {
			return counts
		}
	}
	return nil
}
