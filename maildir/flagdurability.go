package maildir

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
)

// Flag changes and their modseqs without an fsync per change.
//
// A STORE renames the message file (which carries the flags, as in
// Dovecot) and appends one record to mailagent.index.log. Neither is
// fsynced: like Dovecot with mail_fsync=optimized, a flag change made in
// the last seconds before a power loss may be lost. What must not happen
// is a modseq going back: a client told modseq M must never be handed a
// later change with a modseq at or below M, or it would miss it.
//
// Within one boot of the kernel, written data survives any process's
// death (the page cache outlives it), so only a reboot can lose records.
// Before the first record written without an fsync, a boot mark is
// appended and fsynced: the boot's identity and a ceiling, the highest
// modseq records without an fsync may carry under this mark. A change
// above the ceiling appends a new mark first (one fsync per
// ceilingStep changes, or per boot, or per new index generation). A
// state loaded from disk whose log's last mark names another boot
// (the machine rebooted since, or another node wrote it) may have lost
// records after that mark: it raises the folder's highest modseq above
// the mark's ceiling, durably and under the lock, so that every process
// hands out modseqs above anything that boot could have reported.
// Changes lost in the crash but whose rename survived are found by the
// next scan (the file's flags differ from the index) and get modseqs
// above the new highest.

// ceilingStep is how many modseqs a boot mark allows before the next.
const ceilingStep = 1 << 16

// bootIDFile holds the Linux kernel's boot identity.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// currentBootID returns the running boot's identity, or "" where the
// system does not tell it (every change is then fsynced).
func currentBootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil || len(b) > 64 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// bootRecord is the log record of a boot mark: records without an fsync
// that follow it were written during boot and carry modseqs up to
// ceiling.
func bootRecord(boot string, ceiling uint64) []byte {
	p := appendStr([]byte{'B'}, boot)
	return binary.AppendUvarint(p, ceiling)
}

// appendFlagLog appends the record of flag changes at modseq mod: without
// an fsync under a boot mark of this boot whose ceiling covers mod, else
// with a new mark, fsynced. The caller holds the lock and has merged.
func (f *folderState) appendFlagLog(mod uint64, rec []byte) error {
	boot := f.s.bootID
	if boot == "" {
		_, err := f.appendLog(true, rec)
		return err
	}
	if f.logBoot == boot && mod <= f.ceiling {
		_, err := f.appendLog(false, rec)
		return err
	}
	c := mod + ceilingStep
	appended, err := f.appendLog(true, bootRecord(boot, c), rec)
	if err == nil && appended {
		f.logBoot, f.ceiling = boot, c
	}
	return err
}

// staleBoot reports whether the log read so far may hold records a
// reboot lost: its last boot mark is not this boot's.
func (f *folderState) staleBoot() bool {
	return f.logBoot != "" && f.logBoot != f.s.bootID
}

// raiseAfterReboot raises the highest modseq above the ceiling of the
// log's last boot mark when that mark is another boot's, recording the
// raise durably (an empty flag record at the new modseq) so that every
// process takes it before handing out a modseq. It returns the events
// of what the lock's merge took in.
func (f *folderState) raiseAfterReboot(ctx context.Context) ([]Event, error) {
	release, evs, err := f.lockIndex(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if !f.staleBoot() {
		return evs, nil // another process did it meanwhile
	}
	m := max(f.highestModSeq, f.ceiling) + 1
	f.highestModSeq = m
	recs := [][]byte{f.flagRecord(m, nil)}
	c := m + ceilingStep
	if f.s.bootID != "" {
		recs = append([][]byte{bootRecord(f.s.bootID, c)}, recs...)
	}
	appended, err := f.appendLog(true, recs...)
	if err == nil && appended && f.s.bootID != "" {
		f.logBoot, f.ceiling = f.s.bootID, c
	}
	return evs, err
}
