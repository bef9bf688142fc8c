package queue

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestDSNFieldsFromOutsideInput: the addresses, the remote host and its
// reply text end up in a notification's fields through the encoder: the
// notification and its delivery-status part parse into exactly the
// fields meant, whatever line breaks and controls the input carried.
func TestDSNFieldsFromOutsideInput(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &meta{ID: "Q1", From: "odd\r\nX-Inj: 1@a.test", Arrived: now, Recipients: []rcptState{
		{Addr: "bob\r\nX-Inj: 2@b.test", State: Failed, Code: 550, Enhanced: [3]int{5, 1, 1},
			Reply: "no such user\r\nX-Inj: 3\x00", Remote: "mx.b.test\r\nX-Inj: 4[192.0.2.1]", Last: now},
		{Addr: "jörg\\+x@b.test", State: Failed, Reply: "local\nX-Inj: 5", Last: now},
	}}
	raw := buildDSN("mx.a.test\r\nX-Inj: 6", m, []int{0, 1}, actionFailed, []byte("Subject: orig\r\n"), false, now, now)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for k := range msg.Header {
		if strings.HasPrefix(k, "X-Inj") {
			t.Errorf("notification header has %s", k)
		}
	}
	if to, err := mail.ParseAddress(msg.Header.Get("To")); err != nil || to.Address != "odd  X-Inj: 1@a.test" {
		t.Errorf("To %q: %v %v", msg.Header.Get("To"), to, err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			t.Fatal("no delivery-status part")
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Type") != "message/delivery-status" {
			continue
		}
		// Per-message fields, then one group per recipient.
		tr := textproto.NewReader(bufio.NewReader(p))
		var groups []textproto.MIMEHeader
		for {
			h, err := tr.ReadMIMEHeader()
			if len(h) > 0 {
				groups = append(groups, h)
			}
			if err != nil {
				break
			}
		}
		if len(groups) != 3 {
			t.Fatalf("delivery-status has %d field groups, want 3: %v", len(groups), groups)
		}
		for _, g := range groups {
			for k := range g {
				if strings.HasPrefix(k, "X-Inj") {
					t.Errorf("delivery-status has %s: %v", k, g)
				}
			}
		}
		if got := groups[0].Get("Reporting-Mta"); got != "dns; mx.a.test??X-Inj??6" {
			t.Errorf("Reporting-MTA %q", got)
		}
		want := []map[string]string{
			{"Final-Recipient": `rfc822; "bob  X-Inj: 2"@b.test`, "Remote-Mta": "dns; mx.b.test??X-Inj??4",
				"Diagnostic-Code": "smtp; 550 5.1.1 no such user  X-Inj: 3"},
			{"Final-Recipient": `utf-8; jörg\x{5C}\x{2B}x@b.test`, "Diagnostic-Code": "X-mailagent; local X-Inj: 5"},
		}
		for i, w := range want {
			for k, v := range w {
				if got := groups[i+1].Get(k); got != v {
					t.Errorf("recipient %d: %s %q, want %q", i, k, got, v)
				}
			}
		}
		return
	}
}
