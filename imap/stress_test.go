package imap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/maildir"
)

// TestStressFlagsModSeqs: sessions of one user change flags and
// keywords, expunge, append, copy and move in one folder while a second
// Store on the same Maildir (another process or node) does the same and
// files in cur/ are renamed directly (Dovecot, a mv). Every response is
// checked as it comes (a message's modseq never goes back, one modseq
// never names two flag states of a message, an expunged UID is never
// shown again, UIDs given to new messages are never given twice), and at
// the end, after one NOOP, every session's view (UIDs, flags, keywords,
// modseqs) must be the folder's, HIGHESTMODSEQ at least every message's
// modseq, and FETCH (CHANGEDSINCE m) exactly the messages changed after
// m. $MAILAGENT_STRESS_SEED and $MAILAGENT_STRESS_OPS change the run.
func TestStressFlagsModSeqs(t *testing.T) {
	seed := uint64(envCount(t, "MAILAGENT_STRESS_SEED", 1))
	ops := envCount(t, "MAILAGENT_STRESS_OPS", 60)
	for _, c := range []struct {
		name           string
		node2, renames bool
	}{{"sessions", false, false}, {"second node", true, false}, {"renames in cur", false, true}, {"all", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stressFlagsModSeqs(t, seed, ops, c.node2, c.renames)
		})
	}
}

func stressFlagsModSeqs(t *testing.T, seed uint64, ops int, withNode2, withRenames bool) {
	const user = "alice@local.example"
	st := newTestStack(t)
	for i := range 30 {
		st.deliver(user, "INBOX", fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i))
	}
	st.deliver(user, "Other", testMessage)
	opts := st.options()
	// An internal error is a failure of the test, with its cause.
	errs := newErrorLog()
	opts.Logger = slog.New(errs)
	defer func() {
		if l := errs.String(); l != "" {
			t.Errorf("server errors:\n%s", l)
		}
	}()
	_, addr := st.serve(opts)
	ctx := context.Background()
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)

	// The second node: its own Store on the same Maildir.
	node2, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "node2", PollInterval: time.Hour, NoWatcher: true})
	must(t, err)
	defer node2.Close()

	chk := &stressCheck{expunged: map[uint32]bool{}, given: map[uint32]string{}, states: map[[2]uint64]string{}}
	const nsess = 5
	sessions := make([]*stressSession, nsess)
	for i := range sessions {
		s, err := dialStress(addr, fmt.Sprintf("s%d", i), i%2 == 1, chk)
		if err != nil {
			t.Fatal(err)
		}
		defer s.c.Close()
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		sessions[i] = s
	}

	var wg sync.WaitGroup
	failures := make(chan error, nsess+2)
	for i, s := range sessions {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for n := range ops {
				if err := s.randomOp(rng); err != nil {
					failures <- fmt.Errorf("%s, operation %d: %w", s.name, n, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if !withNode2 {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 100))
		if err := stressNode(ctx, node2, path, rng, ops, chk); err != nil {
			failures <- fmt.Errorf("second node: %w", err)
		}
	})
	wg.Go(func() {
		if !withRenames {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 200))
		if err := stressRenames(filepath.Join(path, "cur"), rng, ops); err != nil {
			failures <- fmt.Errorf("renames in cur/: %w", err)
		}
	})
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// The server looks at every file once more (a change made in the
	// same clock tick as one it saw leaves the directory's mtime as it
	// was), then every session is told everything after one NOOP.
	md, err := st.maildirs.Open(ctx, path)
	must(t, err)
	defer md.Close()
	f, err := md.Folder(ctx, "INBOX")
	must(t, err)
	must(t, f.Sync(ctx))
	for _, s := range sessions {
		if err := s.catchUp(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	snap, err := f.Snapshot(ctx)
	must(t, err)
	want := map[uint32]maildir.Message{}
	var wantUIDs []uint32
	var maxMod uint64
	for _, m := range snap.Messages {
		want[m.UID] = m
		wantUIDs = append(wantUIDs, m.UID)
		maxMod = max(maxMod, m.ModSeq)
		if chk.expunged[m.UID] {
			t.Errorf("UID %d was expunged and is in the folder again", m.UID)
		}
	}
	if snap.HighestModSeq < maxMod {
		t.Errorf("HIGHESTMODSEQ %d below a message's modseq %d", snap.HighestModSeq, maxMod)
	}
	for _, s := range sessions {
		if !slices.Equal(s.view, wantUIDs) {
			t.Errorf("%s: sees UIDs %v, the folder has %v", s.name, s.view, wantUIDs)
			continue
		}
		for _, u := range s.view {
			m := want[u]
			if got, w := s.flags[u], normFlags(m.Flags); got != w {
				t.Errorf("%s: UID %d has flags (%s), the folder (%s)", s.name, u, got, w)
			}
			if got := s.modseq[u]; got != m.ModSeq {
				t.Errorf("%s: UID %d has modseq %d, the folder %d", s.name, u, got, m.ModSeq)
			}
		}
		lines, tagged, err := s.cmd("STATUS INBOX (HIGHESTMODSEQ)")
		if err != nil || !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("%s: STATUS: %v %s", s.name, err, tagged)
		}
		if h := statusNumber(lines, "HIGHESTMODSEQ"); h < maxMod {
			t.Errorf("%s: STATUS HIGHESTMODSEQ %d below a message's modseq %d", s.name, h, maxMod)
		}
	}
	// A message on disk is the same message to a Store opened afresh
	// (another process, or this one after a restart): same flags, same
	// modseq.
	fresh, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "node3", PollInterval: time.Hour, NoWatcher: true})
	must(t, err)
	defer fresh.Close()
	fm, err := fresh.Open(ctx, path)
	must(t, err)
	ff, err := fm.Folder(ctx, "INBOX")
	must(t, err)
	fsnap, err := ff.Snapshot(ctx)
	must(t, err)
	for _, m := range fsnap.Messages {
		w, ok := want[m.UID]
		switch {
		case !ok:
			t.Errorf("a fresh Store sees UID %d, the server does not", m.UID)
		case normFlags(m.Flags) != normFlags(w.Flags) || m.ModSeq != w.ModSeq:
			t.Errorf("UID %d: a fresh Store sees (%s) at %d, the server (%s) at %d", m.UID, normFlags(m.Flags), m.ModSeq, normFlags(w.Flags), w.ModSeq)
		}
	}
	if len(fsnap.Messages) != len(snap.Messages) {
		t.Errorf("a fresh Store sees %d messages, the server %d", len(fsnap.Messages), len(snap.Messages))
	}
	// CHANGEDSINCE m returns exactly the messages changed after m.
	mods := make([]uint64, 0, len(snap.Messages))
	for _, m := range snap.Messages {
		mods = append(mods, m.ModSeq)
	}
	slices.Sort(mods)
	s := sessions[0]
	for _, since := range []uint64{0, mods[len(mods)/4] - 1, mods[len(mods)/2], mods[len(mods)-1] - 1, mods[len(mods)-1]} {
		lines, tagged, err := s.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", since)
		if err != nil || !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("CHANGEDSINCE %d: %v %s", since, err, tagged)
		}
		var got, exp []uint32
		for _, l := range lines {
			if m := fetchUIDRe.FindStringSubmatch(l); m != nil {
				u, _ := strconv.ParseUint(m[1], 10, 32)
				got = append(got, uint32(u))
			}
		}
		for _, m := range snap.Messages {
			if m.ModSeq > since {
				exp = append(exp, m.UID)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, exp) {
			t.Errorf("UID FETCH (CHANGEDSINCE %d) returned %v, want %v", since, got, exp)
		}
	}
	t.Logf("seed %d: %d messages, highest modseq %d", seed, len(snap.Messages), snap.HighestModSeq)
}

// errorLog is a slog.Handler keeping the server's error records.
type errorLog struct {
	mu   *sync.Mutex
	recs *[]string
}

func newErrorLog() errorLog { return errorLog{mu: new(sync.Mutex), recs: new([]string)} }

func (errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorLog) WithAttrs([]slog.Attr) slog.Handler         { return h }
func (h errorLog) WithGroup(string) slog.Handler              { return h }
func (h errorLog) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, line)
	h.mu.Unlock()
	return nil
}

func (h errorLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(*h.recs, "\n")
}

// stressCheck is what the sessions of TestStressFlagsModSeqs have been
// told, together.
type stressCheck struct {
	mu       sync.Mutex
	expunged map[uint32]bool      // UIDs some session was told are gone
	given    map[uint32]string    // UIDs given to new messages, by whom
	states   map[[2]uint64]string // (UID, modseq) → the flags shown with them
}

// newUID records a UID given to a new message; it must be its first.
func (c *stressCheck) newUID(u uint32, by string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.given[u]; ok {
		return fmt.Errorf("UID %d given to a new message twice (%s, then %s)", u, prev, by)
	}
	c.given[u] = by
	return nil
}

// state records that message u was shown with flags at modseq m.
func (c *stressCheck) state(u uint32, m uint64, flags string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]uint64{uint64(u), m}
	if prev, ok := c.states[k]; ok && prev != flags {
		return fmt.Errorf("UID %d at modseq %d shown as (%s) and as (%s)", u, m, prev, flags)
	}
	c.states[k] = flags
	return nil
}

// stressSession is one IMAP session and what it has been told.
type stressSession struct {
	name    string
	addr    string
	qresync bool
	chk     *stressCheck
	c       net.Conn
	r       *bufio.Reader
	ntag    int

	view   []uint32 // UIDs by sequence number; 0 not fetched yet
	flags  map[uint32]string
	modseq map[uint32]uint64
	// shownAt is the modseq sent with the flags last sent (FLAGS and
	// MODSEQ in one FETCH).
	shownAt map[uint32]uint64
	gone    map[uint32]bool // UIDs this session was told are expunged
	// silent is the change of the STORE .SILENT under way: its FETCH
	// responses carry only MODSEQ, and the client applies the change
	// itself.
	silent func(flags string) string
}

func dialStress(addr, name string, qresync bool, chk *stressCheck) (*stressSession, error) {
	s := &stressSession{name: name, addr: addr, qresync: qresync, chk: chk,
		flags: map[uint32]string{}, modseq: map[uint32]uint64{}, shownAt: map[uint32]uint64{}, gone: map[uint32]bool{}}
	return s, s.connect()
}

func (s *stressSession) connect() error {
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		return err
	}
	s.c, s.r = c, bufio.NewReader(c)
	if g, err := s.line(); err != nil || !strings.HasPrefix(g, "* OK") {
		return fmt.Errorf("greeting %q: %v", g, err)
	}
	return nil
}

// start logs in and selects INBOX with CONDSTORE (QRESYNC for some).
func (s *stressSession) start() error {
	if err := s.must(fmt.Sprintf("LOGIN alice@local.example %q", testPassword)); err != nil {
		return err
	}
	if s.qresync {
		if err := s.must("ENABLE QRESYNC"); err != nil {
			return err
		}
	}
	return s.selectInbox()
}

func (s *stressSession) selectInbox() error {
	s.view = nil
	if err := s.must("SELECT INBOX (CONDSTORE)"); err != nil {
		return err
	}
	return s.fetchUnknown()
}

// fetchUnknown fetches the messages the session was told exist but not
// their UIDs, as a client does after EXISTS.
func (s *stressSession) fetchUnknown() error {
	for try := 0; ; try++ {
		i := slices.Index(s.view, 0)
		if i < 0 {
			return nil
		}
		if try == 10 {
			return fmt.Errorf("message %d of %d: no UID after %d FETCH", i+1, len(s.view), try)
		}
		if try > 0 {
			// Expunged meanwhile: its EXPUNGE waits for a command
			// that allows it.
			if err := s.must("NOOP"); err != nil {
				return err
			}
		}
		if err := s.must(fmt.Sprintf("FETCH %d:* (UID FLAGS MODSEQ)", i+1)); err != nil {
			return err
		}
	}
}

func (s *stressSession) line() (string, error) {
	s.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := s.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// cmd sends a command (literals as LITERAL+) and reads its responses,
// applying the untagged ones to the session's view.
func (s *stressSession) cmd(format string, args ...any) (lines []string, tagged string, err error) {
	s.ntag++
	tag := "t" + strconv.Itoa(s.ntag)
	if _, err := fmt.Fprintf(s.c, "%s %s\r\n", tag, fmt.Sprintf(format, args...)); err != nil {
		return nil, "", err
	}
	for {
		l, err := s.line()
		if err != nil {
			return lines, "", fmt.Errorf("%s: %v", fmt.Sprintf(format, args...), err)
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return lines, rest, nil
		}
		lines = append(lines, l)
		if err := s.untagged(l); err != nil {
			return lines, "", fmt.Errorf("after %s: %q: %w", fmt.Sprintf(format, args...), l, err)
		}
	}
}

// must runs a command that must succeed.
func (s *stressSession) must(command string) error {
	_, tagged, err := s.cmd("%s", command)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(tagged, "OK") {
		return fmt.Errorf("%s: %s", command, tagged)
	}
	return nil
}

var (
	existsRe   = regexp.MustCompile(`^\* (\d+) EXISTS$`)
	expungeRe  = regexp.MustCompile(`^\* (\d+) EXPUNGE$`)
	vanishedRe = regexp.MustCompile(`^\* VANISHED (\(EARLIER\) )?([0-9:,]+)$`)
	fetchRe    = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	fetchUIDRe = regexp.MustCompile(`FETCH \(.*\bUID (\d+)`)
	uidItemRe  = regexp.MustCompile(`\bUID (\d+)`)
	flagsRe    = regexp.MustCompile(`\bFLAGS \(([^)]*)\)`)
	modseqRe   = regexp.MustCompile(`\bMODSEQ \((\d+)\)`)
	newUIDsRe  = regexp.MustCompile(`\[(?:APPENDUID|COPYUID) \d+ (?:[0-9:,]+ )?([0-9:,]+)\]`)
)

// untagged applies an untagged response to the view and checks it.
func (s *stressSession) untagged(l string) error {
	if m := existsRe.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < len(s.view) {
			return fmt.Errorf("EXISTS %d below the %d messages known", n, len(s.view))
		}
		for len(s.view) < n {
			s.view = append(s.view, 0)
		}
		return nil
	}
	if m := expungeRe.FindStringSubmatch(l); m != nil {
		if s.qresync {
			return errors.New("EXPUNGE after ENABLE QRESYNC")
		}
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > len(s.view) {
			return fmt.Errorf("EXPUNGE of %d, %d known", n, len(s.view))
		}
		s.expunge(s.view[n-1])
		s.view = slices.Delete(s.view, n-1, n)
		return nil
	}
	if m := vanishedRe.FindStringSubmatch(l); m != nil {
		set, err := imapParseUIDSet(m[2])
		if err != nil {
			return err
		}
		for _, u := range set {
			i := slices.Index(s.view, u)
			if i < 0 && m[1] == "" {
				// A message announced by EXISTS but not fetched yet:
				// any of the unknown ones between its known
				// neighbours (they are alike).
				i = s.unknownSlot(u)
				if i < 0 {
					return fmt.Errorf("VANISHED %d, not in the view", u)
				}
			}
			if i < 0 {
				continue
			}
			s.expunge(u)
			s.view = slices.Delete(s.view, i, i+1)
		}
		return nil
	}
	if m := fetchRe.FindStringSubmatch(l); m != nil {
		seq, _ := strconv.Atoi(m[1])
		items := m[2]
		um := uidItemRe.FindStringSubmatch(items)
		if um == nil {
			return errors.New("FETCH without UID once CONDSTORE is on")
		}
		u64, _ := strconv.ParseUint(um[1], 10, 32)
		uid := uint32(u64)
		if seq < 1 || seq > len(s.view) {
			return fmt.Errorf("FETCH of %d, %d known", seq, len(s.view))
		}
		switch s.view[seq-1] {
		case 0:
			if s.gone[uid] {
				return fmt.Errorf("UID %d was expunged and is shown again", uid)
			}
			if seq > 1 && s.view[seq-2] >= uid && s.view[seq-2] != 0 {
				return fmt.Errorf("UID %d after UID %d", uid, s.view[seq-2])
			}
			s.view[seq-1] = uid
		case uid:
		default:
			return fmt.Errorf("message %d is UID %d, FETCH says %d", seq, s.view[seq-1], uid)
		}
		mm := modseqRe.FindStringSubmatch(items)
		if mm == nil {
			return errors.New("FETCH without MODSEQ once CONDSTORE is on")
		}
		mod, _ := strconv.ParseUint(mm[1], 10, 64)
		prev, seen := s.modseq[uid]
		if seen && mod < prev {
			return fmt.Errorf("UID %d: modseq %d after %d", uid, mod, prev)
		}
		if fm := flagsRe.FindStringSubmatch(items); fm != nil {
			fl := normFlagList(fm[1])
			if at, ok := s.shownAt[uid]; ok && at == mod && s.flags[uid] != fl {
				return fmt.Errorf("UID %d: flags (%s) then (%s) at the same modseq %d", uid, s.flags[uid], fl, mod)
			}
			s.flags[uid] = fl
			s.shownAt[uid] = mod
			if err := s.chk.state(uid, mod, fl); err != nil {
				return err
			}
		} else if s.silent != nil {
			s.flags[uid] = s.silent(s.flags[uid])
		}
		s.modseq[uid] = mod
		return nil
	}
	return nil
}

// unknownSlot returns the index of a message of the view whose UID is
// not known yet and may be u (between known UIDs below and above u), or
// -1.
func (s *stressSession) unknownSlot(u uint32) int {
	slot := -1
	for i, v := range s.view {
		switch {
		case v == 0:
			if slot < 0 {
				slot = i
			}
		case v < u:
			slot = -1
		default:
			return slot
		}
	}
	return slot
}

func (s *stressSession) expunge(u uint32) {
	if u == 0 {
		return
	}
	s.gone[u] = true
	delete(s.flags, u)
	delete(s.modseq, u)
	delete(s.shownAt, u)
	s.chk.mu.Lock()
	s.chk.expunged[u] = true
	s.chk.mu.Unlock()
}

// newUIDs records the UIDs of APPENDUID or COPYUID in a tagged reply.
func (s *stressSession) newUIDs(tagged string) error {
	m := newUIDsRe.FindStringSubmatch(tagged)
	if m == nil {
		return nil
	}
	set, err := imapParseUIDSet(m[1])
	if err != nil {
		return err
	}
	for _, u := range set {
		if err := s.chk.newUID(u, s.name); err != nil {
			return err
		}
	}
	return nil
}

var stressFlags = []string{`\Seen`, `\Flagged`, `\Answered`, `\Draft`, `$K1`, `$K2`, `$K3`, `$Label5`}

func randomFlags(rng *rand.Rand) []string {
	var out []string
	for _, f := range stressFlags {
		if rng.IntN(3) == 0 {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = append(out, stressFlags[rng.IntN(len(stressFlags))])
	}
	return out
}

// randomUIDs picks a few UIDs of the view.
func (s *stressSession) randomUIDs(rng *rand.Rand) string {
	var known []uint32
	for _, u := range s.view {
		if u != 0 {
			known = append(known, u)
		}
	}
	if len(known) == 0 {
		return "1:*"
	}
	var set imap.UIDSet
	for range 1 + rng.IntN(3) {
		set.AddNum(imap.UID(known[rng.IntN(len(known))]))
	}
	return set.String()
}

// randomOp runs one command chosen by rng.
func (s *stressSession) randomOp(rng *rand.Rand) error {
	var err error
	switch n := rng.IntN(100); {
	case n < 40:
		op := []string{"+FLAGS", "-FLAGS", "FLAGS"}[rng.IntN(3)]
		if rng.IntN(4) == 0 {
			op += ".SILENT"
		}
		cond := ""
		if rng.IntN(5) == 0 {
			var highest uint64
			for _, m := range s.modseq {
				highest = max(highest, m)
			}
			cond = fmt.Sprintf(" (UNCHANGEDSINCE %d)", highest)
		}
		flags := randomFlags(rng)
		if strings.HasSuffix(op, ".SILENT") {
			s.silent = func(cur string) string { return applyStressOp(cur, op, flags) }
		}
		err = s.must(fmt.Sprintf("UID STORE %s%s %s (%s)", s.randomUIDs(rng), cond, op, strings.Join(flags, " ")))
		s.silent = nil
	case n < 55:
		err = s.must(fmt.Sprintf("UID FETCH %s (FLAGS)", s.randomUIDs(rng)))
	case n < 62:
		err = s.must("NOOP")
	case n < 68:
		set := s.randomUIDs(rng)
		if err = s.must(fmt.Sprintf("UID STORE %s +FLAGS.SILENT (\\Deleted)", set)); err == nil {
			err = s.must(fmt.Sprintf("UID EXPUNGE %s", set))
		}
	case n < 76:
		msg := fmt.Sprintf("Subject: %s %d\r\n\r\nappended\r\n", s.name, s.ntag)
		var tagged string
		_, tagged, err = s.cmd("APPEND INBOX (%s) {%d+}\r\n%s", strings.Join(randomFlags(rng), " "), len(msg), msg)
		if err == nil && !strings.HasPrefix(tagged, "OK") {
			err = fmt.Errorf("APPEND: %s", tagged)
		}
		if err == nil {
			err = s.newUIDs(tagged)
		}
	case n < 84:
		var tagged string
		_, tagged, err = s.cmd("UID COPY %s INBOX", s.randomUIDs(rng))
		if err == nil {
			err = s.newUIDs(tagged)
		}
	case n < 88:
		err = s.must(fmt.Sprintf("UID MOVE %s Other", s.randomUIDs(rng)))
	case n < 92:
		var since uint64
		for _, m := range s.modseq {
			if rng.IntN(4) == 0 {
				since = max(since, m)
			}
		}
		err = s.must(fmt.Sprintf("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", since))
	case n < 96:
		err = s.selectInbox()
	default:
		// A new connection, as clients reconnect.
		s.must("LOGOUT")
		s.c.Close()
		if err = s.connect(); err == nil {
			err = s.start()
		}
	}
	if err != nil {
		return err
	}
	return s.fetchUnknown()
}

// catchUp runs NOOP and fetches the messages it announced.
func (s *stressSession) catchUp() error {
	if err := s.must("NOOP"); err != nil {
		return err
	}
	return s.fetchUnknown()
}

// stressNode changes the folder through another Store, as a second node
// or process does.
func stressNode(ctx context.Context, store *maildir.Store, path string, rng *rand.Rand, ops int, chk *stressCheck) error {
	md, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer md.Close()
	f, err := md.Folder(ctx, "INBOX")
	if err != nil {
		return err
	}
	for range ops {
		snap, err := f.Snapshot(ctx)
		if err != nil {
			return err
		}
		if len(snap.Messages) == 0 {
			continue
		}
		u := snap.Messages[rng.IntN(len(snap.Messages))].UID
		switch n := rng.IntN(10); {
		case n < 7:
			op := []maildir.FlagOp{maildir.FlagsAdd, maildir.FlagsRemove, maildir.FlagsSet}[rng.IntN(3)]
			_, err = f.StoreFlags(ctx, []uint32{u}, op, randomFlags(rng))
		case n < 8:
			_, err = f.Expunge(ctx, []uint32{u})
		default:
			var uid uint32
			uid, err = f.Append(ctx, strings.NewReader("Subject: node2\r\n\r\nx\r\n"), randomFlags(rng), time.Time{})
			if err == nil {
				err = chk.newUID(uid, "second node")
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stressRenames changes flags by renaming files in cur/ directly, as
// Dovecot does (\Flagged, \Answered).
func stressRenames(cur string, rng *rand.Rand, ops int) error {
	for range ops {
		d, err := os.Open(cur)
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return err
		}
		slices.Sort(names)
		if len(names) == 0 {
			continue
		}
		name := names[rng.IntN(len(names))]
		base, info, ok := strings.Cut(name, ":2,")
		if !ok {
			continue
		}
		letter := "FR"[rng.IntN(2)]
		if strings.IndexByte(info, letter) >= 0 {
			info = strings.ReplaceAll(info, string(letter), "")
		} else {
			b := []byte(info + string(letter))
			slices.Sort(b)
			info = string(b)
		}
		err = os.Rename(filepath.Join(cur, name), filepath.Join(cur, base+":2,"+info))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// applyStressOp applies STORE's op to the flags cur (normFlags' form).
func applyStressOp(cur, op string, flags []string) string {
	have := strings.Fields(cur)
	switch strings.TrimSuffix(op, ".SILENT") {
	case "+FLAGS":
		for _, f := range flags {
			if !slices.Contains(have, f) {
				have = append(have, f)
			}
		}
	case "-FLAGS":
		have = slices.DeleteFunc(have, func(f string) bool { return slices.Contains(flags, f) })
	default:
		have = slices.Clone(flags)
	}
	return normFlags(have)
}

// normFlagList sorts a FETCH FLAGS list, without \Recent.
func normFlagList(s string) string {
	return normFlags(strings.Fields(s))
}

func normFlags(flags []string) string {
	var out []string
	for _, f := range flags {
		if !strings.EqualFold(f, `\Recent`) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// imapParseUIDSet reads a UID set of numbers and ranges.
func imapParseUIDSet(s string) ([]uint32, error) {
	var out []uint32
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("UID set %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, fmt.Errorf("UID set %q", s)
			}
		}
		for u := min(a, b); u <= max(a, b); u++ {
			out = append(out, uint32(u))
		}
	}
	return out, nil
}

// statusNumber reads an item of an untagged STATUS response.
func statusNumber(lines []string, item string) uint64 {
	re := regexp.MustCompile(`\b` + item + ` (\d+)`)
	for _, l := range lines {
		if strings.HasPrefix(l, "* STATUS") {
			if m := re.FindStringSubmatch(l); m != nil {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
