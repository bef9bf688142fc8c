package imap

import (
	"runtime"
	"strings"
	"testing"
)

// BenchmarkSortThread times UID SORT (REVERSE DATE) and UID THREAD
// REFERENCES on an INBOX of 20,000 small messages shaped as
// BenchmarkVersusDovecot's (dates out of arrival order, threads of
// four), in process and without a peer, after a first round that
// builds the folder's cache: the server's own cost per command, for
// profiling (-cpuprofile) what BenchmarkVersusDovecot's SORT and
// THREAD rows measure against Dovecot. held-B/msg is what the first
// SORT leaves on the heap per message: the fields the folder's shared
// state keeps decoded (maildir's DecodedFields) and the EMAILIDs the
// index entries keep once computed.
func BenchmarkSortThread(b *testing.B) {
	const n = 20000
	st := newTestStack(b)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(b, err)
	fillMaildir(b, path, n, 600)
	_, addr := st.serve(st.options())
	run := benchSession(b, addr)
	run("SELECT INBOX")
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	run("UID SORT (REVERSE DATE) UTF-8 ALL")
	held := float64(heap()-before) / n
	for _, q := range []string{"UID SORT (REVERSE DATE) UTF-8 ALL", "UID THREAD REFERENCES UTF-8 ALL"} {
		run(q) // fills the cache
		b.Run(strings.Fields(q)[1], func(b *testing.B) {
			for b.Loop() {
				if run(q) != 1 {
					b.Fatalf("%s: no answer", q)
				}
			}
			b.ReportMetric(held, "held-B/msg")
		})
	}
}
