package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Dovecot-written maildirsize keeps its limit when the directory has
// none for the user (a zero Quota): an over-quota delivery is refused and
// the definition line is not rewritten to "0S".
func TestQuotaKeepsRecordedLimit(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	path := filepath.Join(m.Path(), maildirsizeName)
	// As Dovecot's quota plugin writes it: the limit, then the usage.
	mustWriteFile(t, path, "2000S\n0 0\n")
	none := Quota{}
	if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(msg("small", 500)), &DeliverOptions{Quota: &none}); err != nil {
		t.Fatal(err)
	}
	err := s.CheckQuota(ctx, m.Path(), &none, 1600)
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("CheckQuota of 1600 more bytes: %v, want over quota", err)
	}
	_, err = s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(msg("big", 1600)), &DeliverOptions{Quota: &none})
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Limit.Bytes != 2000 {
		t.Fatalf("over-quota delivery: %v, want a QuotaError with the recorded 2000-byte limit", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "2000S\n") {
		t.Fatalf("maildirsize rewritten: %q", data)
	}
	if u, err := m.Quota(ctx); err != nil || u.Limit.Bytes != 2000 || u.Messages != 1 {
		t.Fatalf("Quota() = %+v, %v", u, err)
	}
	// A directory limit still replaces the recorded one.
	lim := Quota{Bytes: 5000}
	if err := s.CheckQuota(ctx, m.Path(), &lim, 1600); err != nil {
		t.Fatalf("with a 5000-byte directory limit: %v", err)
	}
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), "5000S\n") {
		t.Fatalf("maildirsize after a directory limit: %q", data)
	}
}
