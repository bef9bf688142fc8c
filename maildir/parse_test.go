package maildir

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	for _, c := range []struct{ utf8, disk string }{
		{"Entwürfe", "Entw&APw-rfe"},
		{"A&B", "A&-B"},
		{"日本語", "&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"😀 x", "&2D3eAA- x"},
	} {
		if got := encodeMUTF7(c.utf8); got != c.disk {
			t.Errorf("encode %q = %q, want %q", c.utf8, got, c.disk)
		}
		if got, err := decodeMUTF7(c.disk); err != nil || got != c.utf8 {
			t.Errorf("decode %q = %q %v", c.disk, got, err)
		}
	}
	for _, bad := range []string{"&", "&AGE-", "&Jjo", "&ZeVnLIqe-&ZeVnLIqe-", "&2D0-", "&AAAA-", "a\x80", "&U,BTF2-"} {
		if got, err := decodeMUTF7(bad); err == nil {
			t.Errorf("decode %q accepted as %q", bad, got)
		}
	}
}

func TestUIDListFormat(t *testing.T) {
	in := "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n" +
		"25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n" +
		"25017 W2481 :1276533073.M242911P3632.kurkku:2,F\n"
	u, err := parseUIDList([]byte(in))
	if err == nil {
		t.Fatal("a record with flags in its key was accepted")
	}
	in = strings.Replace(in, ":2,F", "", 1)
	u, err = parseUIDList([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if u.uidValidity != 1275660208 || u.nextUID != 25022 || u.guid != "3085f01b7f11094c501100008c4a11c1" || len(u.recs) != 2 {
		t.Fatalf("%+v", u)
	}
	if u.recs[1].ext != "W2481" || u.recs[1].key != "1276533073.M242911P3632.kurkku" {
		t.Fatalf("%+v", u.recs[1])
	}
	if got := string(u.marshal()); got != in {
		t.Fatalf("marshal:\n%s\nwant\n%s", got, in)
	}
	// Appended records beyond the header's N move it, as Dovecot reads.
	u, _ = parseUIDList([]byte("3 V5 N2\n1 :a\n7 :b\n"))
	if u.nextUID != 8 {
		t.Fatalf("next %d", u.nextUID)
	}
	v1, err := parseUIDList([]byte("1 99 3\n1 a,S=1\n2 b\n"))
	if err != nil || v1.uidValidity != 99 || v1.recs[1].key != "b" {
		t.Fatalf("version 1: %+v %v", v1, err)
	}
	for _, bad := range []string{"", "3 N5\n", "2 V1 N1\n", "3 V1\n2 :a\n2 :b\n", "3 V1\n0 :a\n", "3 V1\nx :a\n", "3 V1\n1 :../x\n"} {
		if _, err := parseUIDList([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestFilenames(t *testing.T) {
	n := newNamer(42, "mail/host:1,x")
	a, b := n.next(timeUnix(1700000000, 123456)), n.next(timeUnix(1700000000, 123456))
	if a == b || a != `1700000000.M123456P42Q1.mail\057host\0721\054x` {
		t.Fatalf("names %q %q", a, b)
	}
	full := withSizes(a, 10, 12) + ":2,FSa"
	base, info, has := splitFilename(full)
	if !has || info != "FSa" || base != withSizes(a, 10, 12) {
		t.Fatalf("split %q %q %v", base, info, has)
	}
	if s, v := parseSizes(base); s != 10 || v != 12 {
		t.Fatalf("sizes %d %d", s, v)
	}
	if s, v := parseSizes("123.M1P2.host"); s != -1 || v != -1 {
		t.Fatalf("sizes without fields %d %d", s, v)
	}
	if got := flagsFromInfo("DFRSTab", []string{"$Forwarded", "Work"}); !slices.Equal(got, []string{`\Draft`, `\Flagged`, `\Answered`, `\Seen`, `\Deleted`, "$Forwarded", "Work"}) {
		t.Fatalf("flags %v", got)
	}
	if got := applyFlags("PS", "F", FlagsSet); got != "FP" {
		t.Fatalf("set keeps P: %q", got)
	}
}

func TestKeywordsAndSubscriptionsFormat(t *testing.T) {
	kw, err := parseKeywords([]byte("0 $Forwarded\n2 Work\n"))
	if err != nil || !slices.Equal(kw, []string{"$Forwarded", "", "Work"}) {
		t.Fatalf("%q %v", kw, err)
	}
	if got := string(marshalKeywords(kw)); got != "0 $Forwarded\n2 Work\n" {
		t.Fatalf("%q", got)
	}
	if _, err := parseKeywords([]byte("26 x\n")); err == nil {
		t.Fatal("index 26 accepted")
	}
	names := []string{"INBOX", "Lists.go", "Entwürfe", "R&D"}
	data := marshalSubscriptions(names)
	if string(data) != "V\t2\n\nINBOX\nLists\tgo\nEntw&APw-rfe\nR&-D\n" {
		t.Fatalf("%q", data)
	}
	if got := parseSubscriptions(data); !slices.Equal(got, names) {
		t.Fatalf("%q", got)
	}
	if got := parseSubscriptions([]byte("INBOX\nold.style\n")); !slices.Equal(got, []string{"INBOX", "old.style"}) {
		t.Fatalf("version 1: %q", got)
	}
}

func TestMaildirsizeFormat(t *testing.T) {
	u, err := parseMaildirsize([]byte("1000000S,1000C\n   1234    5\n-100 -1\n"))
	if err != nil || u.Bytes != 1134 || u.Messages != 4 || u.Limit != (Quota{1000000, 1000}) {
		t.Fatalf("%+v %v", u, err)
	}
	for _, bad := range []string{"", "1000S\n", "1000S\n1 2", "1000X\n1 1\n", "1000S\n-5 0\n"} {
		if _, err := parseMaildirsize([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if formatQuotaDef(Quota{Bytes: 5}) != "5S" || formatQuotaDef(Quota{Messages: 3}) != "3C" {
		t.Fatal("format")
	}
}

func FuzzUIDList(f *testing.F) {
	f.Add([]byte("3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n25017 W2481 S2400 :x\n"))
	f.Add([]byte("1 99 3\n1 a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseUIDList(data)
		if err != nil || u == nil {
			return
		}
		again, err := parseUIDList(u.marshal())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", u.marshal(), err)
		}
		if again.uidValidity != u.uidValidity || again.nextUID != u.nextUID || !slices.Equal(again.recs, u.recs) {
			t.Fatalf("round trip differs: %+v vs %+v", again, u)
		}
	})
}

func FuzzKeywords(f *testing.F) {
	f.Add([]byte("0 $Forwarded\n1 Work\n"))
	f.Add([]byte("25 z\n3 x\n3 y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kw, _ := parseKeywords(data)
		if len(kw) > maxKeywords {
			t.Fatalf("%d keywords", len(kw))
		}
		again, err := parseKeywords(marshalKeywords(kw))
		if err != nil || !slices.Equal(again, kw) {
			t.Fatalf("round trip %q vs %q (%v)", again, kw, err)
		}
	})
}

func FuzzMaildirsize(f *testing.F) {
	f.Add([]byte("1000000S,1000C\n1234 5\n-100 -1\n"))
	f.Add([]byte("0S\n0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := parseMaildirsize(data)
		if err != nil {
			return
		}
		if u.Bytes < 0 || u.Messages < 0 {
			t.Fatalf("negative usage accepted: %+v", u)
		}
		if q, err := parseQuotaDef(formatQuotaDef(u.Limit)); err != nil || q != u.Limit {
			t.Fatalf("limit round trip %+v vs %+v", q, u.Limit)
		}
	})
}

func FuzzFilename(f *testing.F) {
	f.Add("1700000000.M123P42Q1.host,S=10,W=12:2,FSa")
	f.Add("1.M2P3.h:1,x")
	f.Fuzz(func(t *testing.T, name string) {
		base, info, has := splitFilename(name)
		if has && base+infoSep+info != name {
			t.Fatalf("split %q into %q %q", name, base, info)
		}
		s, v := parseSizes(base)
		if s < -1 || v < -1 {
			t.Fatalf("sizes %d %d", s, v)
		}
		n := normInfo(info)
		if normInfo(n) != n {
			t.Fatalf("normInfo not idempotent on %q", info)
		}
	})
}

func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"Entwürfe", "A&B", "&ZeVnLIqe-", "a.b", "..", "&AGE-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			if dec, err := decodeMUTF7(encodeMUTF7(s)); err != nil || dec != s {
				if !strings.ContainsFunc(s, func(r rune) bool { return r >= 0xd800 && r < 0xe000 }) {
					t.Fatalf("round trip of %q: %q %v", s, dec, err)
				}
			}
		}
		if dec, err := decodeMUTF7(s); err == nil && encodeMUTF7(dec) != s {
			t.Fatalf("two spellings: %q decodes to %q, encodes to %q", s, dec, encodeMUTF7(dec))
		}
		if name, err := CheckName(s); err == nil && name != "INBOX" {
			dir := folderDirName(name)
			if strings.ContainsAny(dir, "/\x00") || dir == "." || dir == ".." {
				t.Fatalf("%q escapes as %q", s, dir)
			}
			if back, ok := folderFromDirName(dir); !ok || back != name {
				t.Fatalf("%q → %q → %q %v", name, dir, back, ok)
			}
		}
	})
}

func FuzzSubscriptions(f *testing.F) {
	f.Add([]byte("V\t2\n\nINBOX\nLists\tgo\nEntw&APw-rfe\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names := parseSubscriptions(data)
		if len(names) > maxSubscriptions {
			t.Fatal("too many")
		}
		_ = bytes.Count(marshalSubscriptions(names), []byte{'\n'})
	})
}

func FuzzIndex(f *testing.F) {
	f.Add(fuzzIndexSeed().marshalIndex())
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &folderState{s: &Store{}}
		g.reset()
		if err := g.parseIndex(data); err != nil {
			return
		}
		if !slices.IsSortedFunc(g.list, func(a, b *entry) int { return int(int64(a.uid) - int64(b.uid)) }) || len(g.list) != len(g.ents) || len(g.byKey) != len(g.ents) {
			t.Fatalf("inconsistent state from %q", data)
		}
		again := &folderState{}
		again.reset()
		if err := again.parseIndex(g.marshalIndex()); err != nil || len(again.list) != len(g.list) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// fuzzIndexSeed is a folder state with two messages, modseqs, an
// expunge record and a cache reference.
func fuzzIndexSeed() *folderState {
	st := &folderState{uidValidity: 7, nextUID: 4, highestModSeq: 9, expungeFloor: 2, cacheGen: "c", logGen: "l"}
	st.reset()
	st.add(1, &entry{key: "a,S=1,W=1", info: "S", size: 1, vsize: 1, mtime: 5, modseq: 4, saveDate: 6, cacheOff: 20, fieldsOff: 40})
	st.add(2, &entry{key: "b", inNew: true, size: 2, vsize: 3, modseq: 9})
	st.expunged = []expungeRec{{uid: 3, modseq: 8}}
	return st
}

// FuzzIndexLog replays arbitrary log records onto a folder state.
func FuzzIndexLog(f *testing.F) {
	st := fuzzIndexSeed()
	st.logGen = "g"
	st.dir = f.TempDir()
	st.s = &Store{}
	if err := st.startIndexLog(); err != nil {
		f.Fatal(err)
	}
	st.ents[2].info = "FT"
	fields := st.fieldsRecord([]fieldsAt{{rec: cacheRec{uid: 1, key: "a,S=1,W=1"}, off: 60}})
	if err := st.appendIndexLog(st.flagRecord(10, []uint32{1, 2}), st.newRecord(11, []uint32{1}), bootRecord("b", 12), fields); err != nil {
		f.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(st.dir, indexLogName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(log[len(st.indexLogHeader()):])
	f.Fuzz(func(t *testing.T, data []byte) {
		g := fuzzIndexSeed()
		g.logGen, g.dir = "g", st.dir
		p := filepath.Join(st.dir, indexLogName)
		if err := os.WriteFile(p, append(g.indexLogHeader(), data...), 0o600); err != nil {
			t.Fatal(err)
		}
		before := g.highestModSeq
		g.replayIndexLog()
		if g.highestModSeq < before || g.logOff > int64(len(data)+len(g.indexLogHeader())) {
			t.Fatalf("highest %d (was %d), offset %d", g.highestModSeq, before, g.logOff)
		}
		for _, e := range g.list {
			if e.modseq > g.highestModSeq {
				t.Fatalf("message %d modseq %d above highest %d", e.uid, e.modseq, g.highestModSeq)
			}
		}
	})
}

func TestCompareKeysOrdersByTime(t *testing.T) {
	keys := []string{
		"1700000001.M5P1Q9.h",
		"1700000000.M1000P1Q2.h",
		"999999999.M1P1Q1.h",
		"1700000000.M999P1Q1.h",
		"odd-name",
	}
	slices.SortFunc(keys, compareKeys)
	want := []string{
		"999999999.M1P1Q1.h",
		"1700000000.M999P1Q1.h",
		"1700000000.M1000P1Q2.h",
		"1700000001.M5P1Q9.h",
		"odd-name",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("order %q, want %q", keys, want)
	}
}

// FuzzUIDListEnds checks that what the known-file check reads of a
// dovecot-uidlist's two ends, when it claims certainty, agrees with a
// parse of the whole file.
func FuzzUIDListEnds(f *testing.F) {
	f.Add([]byte("3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n25017 W2481 S2400 :x\n"))
	f.Add([]byte("3 V7 N1 G00\n"))
	f.Add([]byte("1 99 3\n1 a\n"))
	f.Add(append([]byte("3 V5 N9 G1\n1 :"+strings.Repeat("a", 600)+"\n"), "8 :b\n"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := min(len(data), uidlistEndsSize)
		v, next, last, ok := parseUIDListEnds(data[:n], data[len(data)-n:], n == len(data))
		if !ok {
			return
		}
		u, err := parseUIDList(data)
		if err != nil || u == nil {
			return
		}
		if v != u.uidValidity || next > u.nextUID {
			t.Fatalf("header V%d N%d, whole file V%d N%d", v, next, u.uidValidity, u.nextUID)
		}
		want := uint32(0)
		if len(u.recs) > 0 {
			want = u.recs[len(u.recs)-1].uid
		}
		if last != want {
			t.Fatalf("last record %d, whole file %d", last, want)
		}
	})
}

// FuzzIndexLogHeader replays logs with arbitrary headers: a log that
// does not start with this state's generation is reported as another's
// and applies nothing.
func FuzzIndexLogHeader(f *testing.F) {
	st := fuzzIndexSeed()
	st.logGen = "g"
	f.Add(append(st.indexLogHeader(), frameRecord(st.flagRecord(20, nil))...))
	f.Add([]byte(indexLogMagic + "h\n"))
	f.Add([]byte("MAILAGENT-INDEXLOG 2 g\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		g := fuzzIndexSeed()
		g.logGen, g.dir = "g", dir
		if err := os.WriteFile(filepath.Join(dir, indexLogName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := g.highestModSeq
		_, _, other := g.replayIndexLog()
		ours := bytes.HasPrefix(data, g.indexLogHeader())
		if other == ours {
			t.Fatalf("header %q: reported as another generation's: %v", data[:min(len(data), 40)], other)
		}
		if !ours && (g.highestModSeq != before || g.logOff != 0) {
			t.Fatalf("another generation's log applied: highest %d, offset %d", g.highestModSeq, g.logOff)
		}
	})
}
