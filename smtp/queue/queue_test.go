package queue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
	"github.com/mailagent/mailagent/store"
)

// signed stands for a message DKIM-signed before queueing: the queue must
// hand it on byte for byte.
const signed = "DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=sel;\r\n\th=from:to:subject; bh=AAAA; b=BBBB\r\n" +
	"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: hello\r\n\r\nHi Bob,  \r\n\r\n\r\n"

func TestDeliverOnceAndRemove(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, nil)
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test", "carol@b.test"}, signed)
	if in, err := f.q.Inspect(context.Background(), id); err != nil || len(in.Recipients) != 2 || in.Recipients[0].State != Queued {
		t.Fatalf("Inspect after Commit: %+v, %v", in, err)
	}
	f.runDue(t)
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages delivered, want 1 transaction for both recipients", len(msgs))
	}
	if got := strings.Join(msgs[0].To, ","); got != "bob@b.test,carol@b.test" {
		t.Errorf("recipients %s", got)
	}
	if string(msgs[0].Data) != signed {
		t.Errorf("message altered:\n%q", msgs[0].Data)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Errorf("still queued after delivery: %v", ids)
	}
	if _, err := f.q.Inspect(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after delivery: %v", err)
	}
	if n := len(f.bounces.all()); n != 0 {
		t.Errorf("%d notifications for a delivered message", n)
	}
}

// TestRetrySchedule: the MX is down; attempts follow the backoff on the
// fake clock, and the message goes out once the MX is up.
func TestRetrySchedule(t *testing.T) {
	addr := deadPort(t)
	f := newFixture(t, portOf(t, addr), nil)
	t0 := f.clock.Now()
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	f.runDue(t)
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r := in.Recipients[0]
	if in.Attempts != 1 || !in.NextAttempt.Equal(t0.Add(5*time.Minute)) || r.State != Queued ||
		r.Err == nil || r.Err.EnhancedCode != (gosmtp.EnhancedCode{4, 4, 1}) {
		t.Fatalf("after first attempt: %+v %+v", in, r.Err)
	}
	// Not yet due: nothing happens.
	f.clock.Advance(4 * time.Minute)
	f.runDue(t)
	if in, _ := f.q.Inspect(context.Background(), id); in.Attempts != 1 {
		t.Fatalf("attempted before due: %d", in.Attempts)
	}
	f.clock.Set(t0.Add(5 * time.Minute))
	f.runDue(t)
	if in, _ := f.q.Inspect(context.Background(), id); in.Attempts != 2 || !in.NextAttempt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("second attempt: attempts %d next %v", in.Attempts, in.NextAttempt.Sub(t0))
	}
	srv := outboundtest.Start(t, outboundtest.Options{Addr: addr})
	f.clock.Set(t0.Add(15 * time.Minute))
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 1 || string(msgs[0].Data) != signed {
		t.Fatalf("after the MX came up: %d messages", len(msgs))
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
	if n := len(f.bounces.all()); n != 0 {
		t.Fatalf("%d notifications", n)
	}
}

// TestExpiry runs the whole five-day schedule against a dead MX: the gaps
// double from 5 minutes to 4000 s, one delay warning goes out after 4
// hours, and a failure notification at the end.
func TestExpiry(t *testing.T) {
	f := newFixture(t, portOf(t, deadPort(t)), func(o *Options) { o.DelayWarning = 4 * time.Hour })
	t0 := f.clock.Now()
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	var times []time.Time
	for range 500 {
		times = append(times, f.clock.Now())
		f.runDue(t)
		in, err := f.q.Inspect(context.Background(), id)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(in.NextAttempt)
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 4000 * time.Second, 4000 * time.Second}
	for i, w := range want {
		if got := times[i+1].Sub(times[i]); got != w {
			t.Errorf("gap %d = %v, want %v", i, got, w)
		}
	}
	if last := times[len(times)-1]; !last.Equal(t0.Add(5 * 24 * time.Hour)) {
		t.Errorf("last attempt at %v, want 5 days", last.Sub(t0))
	}
	dsns := f.bounces.all()
	if len(dsns) != 2 {
		t.Fatalf("%d notifications, want a delay warning and a failure", len(dsns))
	}
	delayed := parseDSN(t, dsns[0].data)
	if delayed.recipients[0]["Action"] != "delayed" || !strings.HasPrefix(delayed.recipients[0]["Status"], "4.") {
		t.Errorf("warning: %+v", delayed.recipients)
	}
	failed := parseDSN(t, dsns[1].data)
	if r := failed.recipients[0]; r["Action"] != "failed" || r["Status"] != "4.4.1" || r["Final-Recipient"] != "rfc822; bob@b.test" {
		t.Errorf("expiry notification: %+v", r)
	}
}

func TestPermanentFailureNotification(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		if r == "bob@b.test" {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no mailbox here by that name"}
		}
		return nil
	}})
	f := newFixture(t, srv.Port, nil)
	f.enqueue(t, "alice@a.test", []string{"bob@b.test", "carol@b.test"}, signed)
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "carol@b.test" {
		t.Fatalf("delivered: %+v", msgs)
	}
	dsns := f.bounces.all()
	if len(dsns) != 1 {
		t.Fatalf("%d notifications", len(dsns))
	}
	d := dsns[0]
	if d.env.From != "" || !slices.Equal(d.env.Recipients, []string{"alice@a.test"}) {
		t.Errorf("notification envelope: from %q to %v", d.env.From, d.env.Recipients)
	}
	rep := parseDSN(t, d.data)
	if len(rep.recipients) != 1 {
		t.Fatalf("recipients in report: %+v", rep.recipients)
	}
	r := rep.recipients[0]
	for k, v := range map[string]string{
		"Final-Recipient": "rfc822; bob@b.test",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; mx.b.test",
		"Diagnostic-Code": "smtp; 550 5.1.1 no mailbox here by that name",
	} {
		if r[k] != v {
			t.Errorf("%s: %q, want %q", k, r[k], v)
		}
	}
	if rep.mta["Reporting-MTA"] != "dns; mta.a.test" {
		t.Errorf("Reporting-MTA %q", rep.mta["Reporting-MTA"])
	}
	if !strings.Contains(rep.text, "bob@b.test") || !strings.Contains(rep.text, "no mailbox here by that name") {
		t.Errorf("human part: %s", rep.text)
	}
	if !strings.Contains(rep.headers, "Subject: hello") || strings.Contains(rep.headers, "Hi Bob") {
		t.Errorf("returned headers: %q", rep.headers)
	}
	if rep.header.Get("Auto-Submitted") != "auto-replied" || !strings.Contains(rep.header.Get("To"), "alice@a.test") {
		t.Errorf("notification header: %v", rep.header)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Errorf("still queued: %v", ids)
	}
}

func TestNullMXFailsAtOnce(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, nil)
	f.enqueue(t, "alice@a.test", []string{"nobody@null.test"}, signed)
	f.runDue(t)
	dsns := f.bounces.all()
	if len(dsns) != 1 {
		t.Fatalf("%d notifications", len(dsns))
	}
	r := parseDSN(t, dsns[0].data).recipients[0]
	if r["Status"] != "5.1.10" || r["Action"] != "failed" || !strings.Contains(r["Diagnostic-Code"], "null MX") {
		t.Errorf("null MX report: %+v", r)
	}
	if srv.Connections() != 0 || len(f.ids(t)) != 0 {
		t.Errorf("connections %d, queued %v", srv.Connections(), f.ids(t))
	}
}

// TestNoBounceLoop: a message from the null sender that fails is dropped
// without a notification.
func TestNoBounceLoop(t *testing.T) {
	f := newFixture(t, 1, nil)
	f.enqueue(t, "", []string{"nobody@null.test"}, signed)
	f.runDue(t)
	if n := len(f.bounces.all()); n != 0 {
		t.Fatalf("%d notifications for the null sender", n)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
}

// TestNotificationsQueued: without a Bounces target the queue sends
// notifications itself, from the null sender, to the sender's MX.
func TestNotificationsQueued(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, func(o *Options) { o.Bounces = nil })
	f.enqueue(t, "sender@b.test", []string{"nobody@null.test"}, signed)
	f.runDue(t)
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].From != "" || !slices.Equal(msgs[0].To, []string{"sender@b.test"}) {
		t.Fatalf("notification not delivered through the queue: %+v", msgs)
	}
	if !strings.Contains(string(msgs[0].Data), "report-type=delivery-status") {
		t.Fatalf("not a report: %s", msgs[0].Data)
	}
}

func TestConnectionReuseAndLimit(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, func(o *Options) { o.PerDestination = 1 })
	for range 10 {
		f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	}
	f.runDue(t)
	if srv.Count() != 10 || srv.Connections() != 1 {
		t.Fatalf("%d messages over %d connections, want 10 over 1", srv.Count(), srv.Connections())
	}
}

func TestRoute(t *testing.T) {
	mx := outboundtest.Start(t, outboundtest.Options{})
	lmtp := outboundtest.Start(t, outboundtest.Options{LMTP: true, Unix: true})
	f := newFixture(t, mx.Port, func(o *Options) {
		o.Route = func(ctx context.Context, rcpt string) (string, error) {
			if strings.HasPrefix(rcpt, "local") {
				return "lmtp:unix:" + lmtp.Addr, nil
			}
			return "", nil
		}
	})
	f.enqueue(t, "alice@a.test", []string{"local1@b.test", "remote@b.test", "local2@b.test"}, signed)
	f.runDue(t)
	if m := lmtp.Messages(); len(m) != 1 || strings.Join(m[0].To, ",") != "local1@b.test,local2@b.test" {
		t.Fatalf("LMTP got %+v", m)
	}
	if m := mx.Messages(); len(m) != 1 || strings.Join(m[0].To, ",") != "remote@b.test" {
		t.Fatalf("MX got %+v", m)
	}
}

func TestAdmin(t *testing.T) {
	addr := deadPort(t)
	f := newFixture(t, portOf(t, addr), nil)
	ctx := context.Background()
	held := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, "Subject: held\r\n\r\n")
	gone := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, "Subject: deleted\r\n\r\n")
	retried := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, "Subject: retried\r\n\r\n")
	if err := f.q.Hold(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := f.q.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	f.runDue(t) // retried fails once (MX down)
	if err := f.q.RetryNow(ctx, held); !errors.Is(err, ErrHeld) {
		t.Errorf("RetryNow on held: %v", err)
	}
	for _, bad := range []string{"../../etc/passwd", "", strings.Repeat("g", idLen), gone} {
		if _, err := f.q.Inspect(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Inspect(%q): %v", bad, err)
		}
		if err := f.q.Hold(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Hold(%q): %v", bad, err)
		}
	}
	ids := f.ids(t)
	slices.Sort(ids)
	want := []string{held, retried}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("List = %v, want %v", ids, want)
	}
	if in, _ := f.q.Inspect(ctx, held); !in.Held || in.Attempts != 0 {
		t.Fatalf("held message: %+v", in)
	}
	srv := outboundtest.Start(t, outboundtest.Options{Addr: addr})
	// Without moving the clock, only what RetryNow made due goes out.
	if err := f.q.RetryNow(ctx, retried); err != nil {
		t.Fatal(err)
	}
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "retried") {
		t.Fatalf("after RetryNow: %+v", msgs)
	}
	if err := f.q.Release(ctx, held); err != nil {
		t.Fatal(err)
	}
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 2 || !strings.Contains(string(msgs[1].Data), "held") {
		t.Fatalf("after Release: %d messages", len(msgs))
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
}

// TestRestart: a closed queue's messages and their state are there for
// the next one on the same spool.
func TestRestart(t *testing.T) {
	addr := deadPort(t)
	f := newFixture(t, portOf(t, addr), func(o *Options) { o.Hostname = "first" })
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	f.runDue(t)
	f.q.Close()
	if _, err := f.q.Enqueue(context.Background(), nil, bytesBodyT(signed)); err == nil {
		t.Fatal("closed queue accepted a message")
	}
	srv := outboundtest.Start(t, outboundtest.Options{Addr: addr})
	f.q = f.open(t, srv.Port, nil)
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil || in.Attempts != 1 || in.Recipients[0].Err == nil {
		t.Fatalf("after restart: %+v, %v", in, err)
	}
	f.clock.Advance(5 * time.Minute)
	f.runDue(t)
	if srv.Count() != 1 || len(f.ids(t)) != 0 {
		t.Fatalf("delivered %d, queued %v", srv.Count(), f.ids(t))
	}
}

// TestRun: the background scheduler with the real clock delivers as soon
// as a message is committed, and Shutdown waits for it.
func TestRun(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, func(o *Options) { o.now = nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.q.Run(ctx) }()
	for range 3 {
		f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	}
	srv.Wait(t, 3, 20*time.Second)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := f.q.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Run returned %v", err)
	}
}

// report is a parsed RFC 3464 notification.
type report struct {
	header     netmail.Header
	text       string
	mta        map[string]string
	recipients []map[string]string
	headers    string
}

func parseDSN(t *testing.T, data []byte) report {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	rep := report{header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.Split(ct, ";")[0])
		switch {
		case strings.HasPrefix(ct, "text/plain"):
			rep.text = string(b)
		case ct == "message/delivery-status":
			groups := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
			for i, g := range groups {
				fields := map[string]string{}
				for _, l := range strings.Split(strings.TrimSpace(g), "\n") {
					if k, v, ok := strings.Cut(l, ": "); ok {
						fields[k] = v
					}
				}
				if len(fields) == 0 {
					continue
				}
				if i == 0 {
					rep.mta = fields
				} else {
					rep.recipients = append(rep.recipients, fields)
				}
			}
		case ct == "text/rfc822-headers", ct == "message/rfc822":
			rep.headers = string(b)
		}
	}
	if j := strings.Join(types, ","); j != "text/plain,message/delivery-status,text/rfc822-headers" && j != "text/plain,message/delivery-status,message/rfc822" {
		t.Fatalf("parts %v", types)
	}
	return rep
}

// TestDamagedSpool: start-up removes half-written leftovers and skips
// unreadable metadata without failing.
func TestDamagedSpool(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	f := newFixture(t, srv.Port, nil)
	good := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	f.q.Close()
	orphanBody := strings.Repeat("1", idLen)
	orphanMeta := strings.Repeat("2", idLen)
	damaged := strings.Repeat("3", idLen)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("msg/"+orphanBody+bodyExt, "x")
	write("msg/"+orphanMeta+metaExt, "{}")
	write("msg/"+damaged+bodyExt, "x")
	write("msg/"+damaged+metaExt, `{"version":1,"id":"`+damaged+`","recipients":[{"addr":"a\nb","state":"queued"}]}`)
	write("tmp/body-123", "partial")
	f.q = f.open(t, srv.Port, nil)
	f.runDue(t)
	if srv.Count() != 1 {
		t.Fatalf("%d delivered, want the good message only", srv.Count())
	}
	for _, gone := range []string{"msg/" + orphanBody + bodyExt, "msg/" + orphanMeta + metaExt, "tmp/body-123", "msg/" + good + metaExt} {
		if _, err := os.Stat(filepath.Join(f.dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "msg", damaged+metaExt)); err != nil {
		t.Errorf("damaged metadata was removed, not kept for an administrator: %v", err)
	}
}

// TestVia: a target fixed to a next hop, as the router's transport table
// uses it, keeps its hop across a restart.
func TestVia(t *testing.T) {
	lmtp := outboundtest.Start(t, outboundtest.Options{LMTP: true, Unix: true})
	f := newFixture(t, 1, nil)
	ctx := context.Background()
	tgt, err := f.q.Transport(ctx, store.Transport{Method: "lmtp", Network: "unix", Path: lmtp.Addr})
	if err != nil {
		t.Fatal(err)
	}
	env := &mail.Envelope{From: "alice@a.test", Recipients: []string{"bob@elsewhere.test"}}
	if err := deliverTo(ctx, tgt, env, bytesBodyT(signed)); err != nil {
		t.Fatal(err)
	}
	f.q.Close()
	f.q = f.open(t, 1, nil)
	f.runDue(t)
	if m := lmtp.Messages(); len(m) != 1 || string(m[0].Data) != signed {
		t.Fatalf("LMTP got %+v", m)
	}
	if _, err := f.q.Via("smtp:[bad"); err == nil {
		t.Error("Via accepted a bad next hop")
	}
	if _, err := f.q.Transport(ctx, store.Transport{Method: "error", Text: "no"}); err == nil {
		t.Error("Transport accepted an error transport")
	}
}

// TestPartialRetry: a recipient deferred with 451 is retried alone; the
// one accepted the first time does not get a second copy.
func TestPartialRetry(t *testing.T) {
	var mu sync.Mutex
	tries := 0
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		mu.Lock()
		defer mu.Unlock()
		if r == "later@b.test" {
			tries++
			if tries == 1 {
				return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "greylisted"}
			}
		}
		return nil
	}})
	f := newFixture(t, srv.Port, nil)
	id := f.enqueue(t, "alice@a.test", []string{"now@b.test", "later@b.test"}, signed)
	f.runDue(t)
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil || in.Recipients[0].State != Delivered || in.Recipients[1].State != Queued ||
		in.Recipients[1].Err.Message != "greylisted" || in.Recipients[1].Remote != "mx.b.test[127.0.0.1]" {
		t.Fatalf("after first attempt: %+v, %v", in, err)
	}
	f.clock.Advance(5 * time.Minute)
	f.runDue(t)
	msgs := srv.Messages()
	if len(msgs) != 2 || strings.Join(msgs[0].To, ",") != "now@b.test" || strings.Join(msgs[1].To, ",") != "later@b.test" {
		t.Fatalf("deliveries: %+v", msgs)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
}

// TestMaxActive: a spool larger than MaxActive drains completely, in
// rounds of at most MaxActive messages, in one RunDue.
func TestMaxActive(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{Discard: true})
	f := newFixture(t, srv.Port, func(o *Options) { o.MaxActive = 7; o.PerDestination = 3 })
	for range 50 {
		f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	}
	f.runDue(t)
	if srv.Count() != 50 || len(f.ids(t)) != 0 {
		t.Fatalf("delivered %d, queued %d", srv.Count(), len(f.ids(t)))
	}
}

func TestSizeLimit(t *testing.T) {
	f := newFixture(t, 1, func(o *Options) { o.MaxMessageBytes = 100 })
	_, err := f.q.Enqueue(context.Background(), &mail.Envelope{From: "a@a.test", Recipients: []string{"b@b.test"}}, bytesBodyT(strings.Repeat("x", 101)))
	var se *mail.Error
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("oversized message: %v", err)
	}
	if _, err := f.q.Enqueue(context.Background(), &mail.Envelope{From: "a@a.test", Recipients: []string{"b@b.test"}}, bytesBodyT(strings.Repeat("x", 100))); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.dir, tmpDir)); len(ents) != 0 {
		t.Fatalf("tmp/ not cleaned: %d", len(ents))
	}
}

// failingTarget refuses every message, like a full disk.
type failingTarget struct{}

func (failingTarget) Start(context.Context, *mail.Envelope) (mail.Delivery, error) {
	return nil, &mail.Error{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "no space"}
}

// TestNotificationNotLost: when the notification cannot be stored, the
// failed recipient stays queued and is reported at the next attempt.
func TestNotificationNotLost(t *testing.T) {
	f := newFixture(t, 1, func(o *Options) { o.Bounces = failingTarget{} })
	id := f.enqueue(t, "alice@a.test", []string{"x@null.test"}, signed)
	f.runDue(t)
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil || in.Recipients[0].State != Queued || in.Recipients[0].Err.Code != 556 {
		t.Fatalf("after a lost notification: %+v, %v", in, err)
	}
	f.q.Close()
	f.q = f.open(t, 1, nil)
	f.clock.Advance(5 * time.Minute)
	f.runDue(t)
	if n := len(f.bounces.all()); n != 1 {
		t.Fatalf("%d notifications after the retry", n)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
}

// TestExpiredNotificationRetried: an expired message whose notification
// cannot be stored is retried on the backoff, not in a tight loop.
func TestExpiredNotificationRetried(t *testing.T) {
	f := newFixture(t, portOf(t, deadPort(t)), func(o *Options) { o.Bounces = failingTarget{}; o.MaxLifetime = time.Hour })
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	f.clock.Advance(2 * time.Hour)
	f.runDue(t)
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil || in.Attempts != 1 || !in.NextAttempt.Equal(f.clock.Now().Add(5*time.Minute)) {
		t.Fatalf("expired, notification refused: %+v, %v", in, err)
	}
}

// TestMaxConnections: with one connection for the whole queue, two next
// hops are served one after the other, and both get their netmail.
func TestMaxConnections(t *testing.T) {
	one := outboundtest.Start(t, outboundtest.Options{LMTP: true, Unix: true})
	two := outboundtest.Start(t, outboundtest.Options{LMTP: true, Unix: true})
	f := newFixture(t, 1, func(o *Options) {
		o.MaxConnections = 1
		o.Route = func(ctx context.Context, rcpt string) (string, error) {
			if strings.HasPrefix(rcpt, "one") {
				return "lmtp:unix:" + one.Addr, nil
			}
			return "lmtp:unix:" + two.Addr, nil
		}
	})
	for range 5 {
		f.enqueue(t, "alice@a.test", []string{"one@b.test"}, signed)
		f.enqueue(t, "alice@a.test", []string{"two@b.test"}, signed)
	}
	f.runDue(t)
	if one.Count() != 5 || two.Count() != 5 || one.Connections() != 1 || two.Connections() != 1 {
		t.Fatalf("one: %d messages over %d connections, two: %d over %d",
			one.Count(), one.Connections(), two.Count(), two.Connections())
	}
}
