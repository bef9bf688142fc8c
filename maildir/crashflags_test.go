package maildir

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCrashFlagsChild is the storing child of TestCrashFlags; it does
// nothing unless started by it.
func TestCrashFlagsChild(t *testing.T) {
	base := os.Getenv("MAILDIR_CRASHFLAGS_BASE")
	if base == "" {
		t.Skip("child process of TestCrashFlags")
	}
	round, _ := strconv.Atoi(os.Getenv("MAILDIR_CRASHFLAGS_ROUND"))
	s, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	n := len(snapshot(t, in).Messages)
	crashWorkers(func(w, i int, report func(format string, args ...any)) error {
		rng := rand.New(rand.NewPCG(uint64(round), uint64(w*1_000_000+i)))
		uids := []uint32{uint32(1 + rng.IntN(n)), uint32(1 + rng.IntN(n))}
		op := []FlagOp{FlagsAdd, FlagsRemove, FlagsSet}[rng.IntN(3)]
		flags := []string{[]string{FlagSeen, FlagFlagged, FlagAnswered, "$K1", "$K2"}[rng.IntN(5)]}
		ms, err := in.StoreFlags(context.Background(), uids, op, flags)
		// What a client is told of the change, once it is made.
		for _, m := range ms {
			report("told %d %d %s", m.UID, m.ModSeq, strings.Join(m.Flags, ","))
		}
		return err
	})
}

// TestCrashFlags kills a child storing flags from four goroutines with
// SIGKILL at random points, and after each kill opens the Maildir again
// (a restart; a lock the child left is broken at once, never after the
// two minutes an abandoned lock takes to go stale): no message's modseq is below the last one a client was
// told for it (equal only with the flags it was told), a new change's
// modseq is above every modseq told, and the flags served are the ones
// the file names on disk carry.
func TestCrashFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop skipped in -short mode")
	}
	base := t.TempDir()
	{
		s := newStoreAt(t, base)
		m := openUser(t, s)
		for i := range 20 {
			deliver(t, s, m, "INBOX", msg(fmt.Sprint(i), 100))
		}
		snapshot(t, folder(t, m, "INBOX"))
		s.Close()
	}
	type told struct {
		modseq uint64
		flags  string
	}
	last := map[uint32]told{} // the last change told of each message
	var highestTold uint64
	for round := range 4 {
		env := []string{"MAILDIR_CRASHFLAGS_BASE=" + base, "MAILDIR_CRASHFLAGS_ROUND=" + strconv.Itoa(round)}
		runCrashChild(t, "TestCrashFlagsChild", env, 10+rand.IntN(60), func(f []string) {
			if len(f) < 3 || f[0] != "told" {
				return
			}
			uid, _ := strconv.ParseUint(f[1], 10, 32)
			mod, _ := strconv.ParseUint(f[2], 10, 64)
			fl := ""
			if len(f) == 4 {
				fl = f[3]
			}
			// Goroutines print in any order: keep the latest change.
			if mod >= last[uint32(uid)].modseq {
				last[uint32(uid)] = told{mod, fl}
			}
			highestTold = max(highestTold, mod)
		})

		s := newStoreAt(t, base)
		in := folder(t, openUser(t, s), "INBOX")
		snap := snapshot(t, in)
		if snap.HighestModSeq < highestTold {
			t.Fatalf("round %d: highest modseq %d after the restart, a client was told %d", round, snap.HighestModSeq, highestTold)
		}
		onDisk := map[string]string{} // key → info letters
		for _, name := range filesIn(t, in.st.dir, "cur") {
			key, info, _ := splitFilename(name)
			onDisk[key] = info
		}
		for _, m := range snap.Messages {
			if want := flagsFromInfo(onDisk[m.Key], snap.Keywords); !slices.Equal(sorted(want), sorted(m.Flags)) {
				t.Errorf("round %d: UID %d served with %v, its file says %v", round, m.UID, m.Flags, want)
			}
			tl, ok := last[m.UID]
			switch {
			case !ok:
			case m.ModSeq < tl.modseq:
				t.Errorf("round %d: UID %d at modseq %d, a client was told %d", round, m.UID, m.ModSeq, tl.modseq)
			case m.ModSeq == tl.modseq && strings.Join(m.Flags, ",") != tl.flags:
				t.Errorf("round %d: UID %d at modseq %d with (%s), a client was told (%s) at it", round, m.UID, m.ModSeq, strings.Join(m.Flags, ","), tl.flags)
			}
		}
		out, err := in.StoreFlags(context.Background(), []uint32{1}, FlagsSet, []string{fmt.Sprintf("$R%d", round)})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].ModSeq <= highestTold {
			t.Fatalf("round %d: a change after the restart got modseq %d, a client was told %d", round, out[0].ModSeq, highestTold)
		}
		last[1] = told{out[0].ModSeq, strings.Join(out[0].Flags, ",")}
		highestTold = out[0].ModSeq
		s.Close()
		if t.Failed() {
			return
		}
	}
}

func sorted(v []string) []string {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}
