package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// visible is the number of messages in new/ and cur/ of each of
// threeRcpts' INBOX.
func (e *testStack) visible() string {
	var out []string
	for _, u := range threeRcpts {
		out = append(out, fmt.Sprint(len(e.messages(u, ""))))
	}
	return strings.Join(out, ",")
}

// TestLocalDeliveryStagesBeforeCommit: after Body every copy is written
// but none is in new/ or cur/; Commit shows them all; Abort after Body
// leaves nothing anywhere, tmp/ included, and no quota used.
func TestLocalDeliveryStagesBeforeCommit(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	ctx := context.Background()
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db}
	body := mail.BytesBody([]byte("Subject: staged\r\n\r\nx\r\n"))
	start := func() mail.Delivery {
		d, err := ld.Start(ctx, &mail.Envelope{ID: "T1", From: "s@far.example"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range threeRcpts {
			if err := d.AddRecipient(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Body(ctx, body); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := start()
	if got := st.visible(); got != "0,0,0" {
		t.Fatalf("visible after Body: %s", got)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.visible(); got != "1,1,1" {
		t.Fatalf("after Commit: %s", got)
	}
	for _, u := range threeRcpts {
		m := st.messages(u, "")[0]
		if !strings.HasPrefix(m, "Return-Path: <s@far.example>\r\nDelivered-To: "+u+"\r\nSubject: staged") {
			t.Fatalf("%s got %q", u, m)
		}
	}
	d = start()
	if err := d.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.visible(); got != "1,1,1" {
		t.Fatalf("after Abort: %s", got)
	}
	for _, u := range threeRcpts {
		if left, _ := os.ReadDir(filepath.Join(st.userDir(u), "tmp")); len(left) != 0 {
			t.Fatalf("%s: tmp/ keeps %d files after Abort", u, len(left))
		}
	}
	m, err := st.maildirs.Open(ctx, st.userDir("small@local.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if u, err := m.Quota(ctx); err != nil || u.Messages != 1 {
		t.Fatalf("small's quota after one delivery and one abort: %+v %v", u, err)
	}
}
