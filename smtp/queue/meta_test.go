package queue

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMetaRoundTrip(t *testing.T) {
	m := &meta{ID: strings.Repeat("a", idLen), From: "alice@a.test", Arrived: time.Unix(1700000000, 0).UTC(),
		NextAttempt: time.Unix(1700000300, 0).UTC(), Attempts: 1, Size: 42, SMTPUTF8: true,
		Recipients: []rcptState{
			{Addr: "bob@b.test", State: Queued, Code: 451, Enhanced: [3]int{4, 4, 1}, Reply: "connection refused", Last: time.Unix(1700000000, 0).UTC()},
			{Addr: "bjørn@b.test", State: Delivered, Code: 250, Remote: "mx.b.test[127.0.0.1]"},
		}}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v\nwant %+v", got, err, m)
	}
	for _, bad := range []string{
		``, `{}`, `null`, `[]`,
		`{"version":2,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"../../../../etc/passwd00","recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[{"addr":"b@b","state":"gone"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","from":"<x>","recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","attempts":-1,"recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[{"addr":"b@b","state":"queued","code":9999}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","ret":"ALL","recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","envid":"a\r\nX: 1","recipients":[{"addr":"b@b","state":"queued"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[{"addr":"b@b","state":"queued","orcpt":"rfc822;a\nb"}]}`,
		`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","recipients":[{"addr":"b@b","state":"queued","notify":16}]}`,
	} {
		if m, err := decodeMeta([]byte(bad)); err == nil {
			t.Errorf("decodeMeta(%s) = %+v, want error", bad, m)
		}
	}
}

// TestMetaWithoutDSN: a metadata file written before DSN was offered
// (no ret, envid, notify, orcpt) reads as RET=HDRS with failures and
// delays notified and no original recipient.
func TestMetaWithoutDSN(t *testing.T) {
	m, err := decodeMeta([]byte(`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","from":"a@a","arrived":"2026-01-01T00:00:00Z","recipients":[{"addr":"b@b","state":"queued"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := m.Recipients[0]
	if m.Ret != "" || m.EnvID != "" || r.ORcpt != "" || !r.Notify.Failure() || !r.Notify.Delay() {
		t.Fatalf("old file read as %+v", m)
	}
	if got := wanted(m, []int{0}, actionFailed); len(got) != 1 {
		t.Fatalf("failure of an old file's recipient not notified")
	}
}

// FuzzDecodeMeta: whatever a damaged spool holds, decoding never panics,
// and what it accepts encodes back to an equal value.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"id":"aaaaaaaaaaaaaaaaaaaaaaaa","from":"a@a","arrived":"2026-01-01T00:00:00Z","recipients":[{"addr":"b@b","state":"queued","enhanced":[4,4,1]}]}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef01234567","recipients":[{"addr":"b@b","state":"failed","code":550,"reply":"no"}],"held":true}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef01234567","recipients":[{"addr":"b@b","hop":"lmtp:unix:/run/lmtp","state":"queued"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		enc, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("accepted metadata does not encode: %v", err)
		}
		again, err := decodeMeta(enc)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, m)
		}
	})
}
