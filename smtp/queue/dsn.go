package queue

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
)

// DSN actions (RFC 3464 §2.3.3).
const (
	actionFailed    = "failed"
	actionDelayed   = "delayed"
	actionDelivered = "delivered"
	actionRelayed   = "relayed"
)

// maxDSNHeader bounds the original header returned in a notification.
const maxDSNHeader = 64 << 10

// maxDSNFull bounds a message returned whole for RET=FULL, as Postfix's
// bounce_size_limit: a larger one is returned as its header only, which
// RFC 3461 section 4.3 allows.
const maxDSNFull = 50000

// wanted returns the recipients of idx whose NOTIFY asks for a
// notification of action (RFC 3461 section 4.1).
func wanted(m *meta, idx []int, action string) []int {
	var out []int
	for _, i := range idx {
		n := m.Recipients[i].Notify
		success := action == actionDelivered || action == actionRelayed
		if (action == actionDelayed && n.Delay()) || (action == actionFailed && n.Failure()) || (success && n.Success()) {
			out = append(out, i)
		}
	}
	return out
}

// returned is what a notification returns of the message at path: the
// whole message for a failure when the sender asked RET=FULL and it is
// within maxDSNFull, else its header; full reports which.
func returned(path string, m *meta, action string) (content []byte, full bool, err error) {
	if m.Ret == "FULL" && action == actionFailed && m.Size <= maxDSNFull {
		f, err := os.Open(path)
		if err == nil {
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxDSNFull+1))
			if err == nil && len(b) <= maxDSNFull {
				return b, true, nil
			}
		}
	}
	hdr, err := readHeader(path)
	return hdr, false, err
}

// notify sends the sender a delivery status notification about the
// recipients idx of m. Nothing is sent for the null reverse path: that is
// what keeps notifications from looping (RFC 5321 §6.1).
func (q *Queue) notify(m *meta, idx []int, action string, now time.Time) error {
	if m.From == "" {
		q.log.Info("queue: no notification for the null sender", "id", m.ID, "action", action)
		return nil
	}
	if idx = wanted(m, idx, action); len(idx) == 0 {
		q.log.Info("queue: no notification requested (NOTIFY)", "id", m.ID, "action", action)
		return nil
	}
	hdr, full, err := returned(q.spool.bodyPath(m.ID), m, action)
	if err != nil {
		q.log.Error("queue: reading header for notification", "id", m.ID, "err", err)
	}
	msg := buildDSN(q.opts.Hostname, m, idx, action, hdr, full, now, m.Arrived.Add(q.opts.MaxLifetime))
	ctx := context.WithoutCancel(q.ctx)
	env := dsnEnvelope(m, now)
	if err := deliverTo(ctx, q.bounceTarget(), env, bytesBody(msg)); err != nil {
		q.log.Error("queue: notification not delivered", "id", m.ID, "to", m.From, "err", err)
		return err
	}
	q.log.Info("queue: notification sent", "id", m.ID, "to", m.From, "action", action, "recipients", len(idx))
	return nil
}

// bounceTarget is where notifications go: Options.Bounces, else the
// queue itself.
func (q *Queue) bounceTarget() mail.Target {
	if q.opts.Bounces != nil {
		return q.opts.Bounces
	}
	return q
}

// dsnEnvelope is the envelope of a notification about m: from the null
// sender (so that it is never bounced itself) to m's sender, wherever
// that is (Generated: a router relays it as it would a user's mail).
func dsnEnvelope(m *meta, now time.Time) *mail.Envelope {
	return &mail.Envelope{ID: m.ID + "-dsn", From: "", Recipients: []string{m.From}, Received: now,
		SMTPUTF8: !isASCII(m.From), Generated: true}
}

var _ mail.Bouncer = (*Queue)(nil)

// Bounce implements smtp.Bouncer: the notification that failed recipients
// of the message env and body (which the caller is accepting for its
// other recipients) were not delivered, written as the queue writes its
// own (RFC 3464, the original header quoted) and handed to
// Options.Bounces. The Delivery returned has its recipient and body; the
// caller commits it together with the message, or aborts it.
func (q *Queue) Bounce(ctx context.Context, env *mail.Envelope, body mail.Body, failed []mail.Failure) (mail.Delivery, error) {
	if env.From == "" || len(failed) == 0 {
		return nil, errors.New("queue: nothing to bounce")
	}
	now := q.opts.now()
	rs := make([]rcptState, len(failed))
	for i, f := range failed {
		rs[i] = rcptState{Addr: f.Rcpt, State: Failed, Code: 554, Enhanced: [3]int{5, 0, 0}, Reply: "delivery failed", Last: now}
		var se *mail.Error
		if errors.As(f.Err, &se) {
			rs[i].Code, rs[i].Enhanced, rs[i].Reply = se.Code, se.EnhancedCode, se.Message
		}
		setDSN(&rs[i], f.DSN)
	}
	return q.prepareNotice(ctx, env, body, rs, actionFailed, now)
}

var _ mail.SuccessNotifier = (*Queue)(nil)

// NotifyDelivered implements mail.SuccessNotifier: one notification
// (RFC 3464, Action: delivered, Status 2.0.0) to env.From naming every
// recipient in delivered, written as the queue writes its own and handed
// to Options.Bounces. Nothing is prepared for the null sender.
func (q *Queue) NotifyDelivered(ctx context.Context, env *mail.Envelope, body mail.Body, delivered []mail.Success) (mail.Delivery, error) {
	if env.From == "" || len(delivered) == 0 {
		return nil, errors.New("queue: nothing to notify")
	}
	now := q.opts.now()
	rs := make([]rcptState, len(delivered))
	for i, d := range delivered {
		rs[i] = rcptState{Addr: d.Rcpt, State: Delivered, Code: 250, Enhanced: [3]int{2, 0, 0}, Reply: "delivered to mailbox", Last: now}
		setDSN(&rs[i], d.DSN)
	}
	return q.prepareNotice(ctx, env, body, rs, actionDelivered, now)
}

// setDSN keeps a recipient's NOTIFY and ORCPT in its state.
func setDSN(r *rcptState, d mail.RcptDSN) {
	r.Notify = d.Notify
	if d.ORcpt != "" {
		r.ORcpt = d.ORcptType + ";" + d.ORcpt
	}
}

// prepareNotice writes the notification of action about the recipients
// rs of the message env and body, and stages it on the bounce target:
// the caller commits the Delivery returned, or aborts it.
func (q *Queue) prepareNotice(ctx context.Context, env *mail.Envelope, body mail.Body, rs []rcptState, action string, now time.Time) (mail.Delivery, error) {
	arrived := env.Received
	if arrived.IsZero() {
		arrived = now
	}
	m := &meta{ID: env.ID, From: env.From, Arrived: arrived, Ret: env.DSNReturn, EnvID: env.EnvID, Recipients: rs}
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	var hdr []byte
	full := m.Ret == "FULL" && action == actionFailed && body.Len() <= maxDSNFull
	if rc, err := body.Open(); err == nil {
		if full {
			hdr, err = io.ReadAll(io.LimitReader(rc, maxDSNFull))
		} else {
			hdr, err = headerOf(rc)
		}
		rc.Close()
		if err != nil {
			return nil, err
		}
	} else {
		return nil, err
	}
	msg := buildDSN(q.opts.Hostname, m, idx, action, hdr, full, now, now)
	denv := dsnEnvelope(m, now)
	d, err := q.bounceTarget().Start(ctx, denv)
	if err != nil {
		return nil, err
	}
	if err := d.AddRecipient(ctx, env.From); err != nil {
		d.Abort(ctx)
		return nil, err
	}
	if err := d.Body(ctx, bytesBody(msg)); err != nil {
		d.Abort(ctx)
		return nil, err
	}
	q.log.Info("queue: notification prepared", "id", m.ID, "to", m.From, "action", action, "recipients", len(idx))
	return d, nil
}

// deliverTo runs a whole two-phase delivery into t.
func deliverTo(ctx context.Context, t mail.Target, env *mail.Envelope, body mail.Body) error {
	d, err := t.Start(ctx, env)
	if err != nil {
		return err
	}
	for _, r := range env.Recipients {
		if err := d.AddRecipient(ctx, r); err != nil {
			d.Abort(ctx)
			return err
		}
	}
	if err := d.Body(ctx, body); err != nil {
		d.Abort(ctx)
		return err
	}
	if err := d.Commit(ctx); err != nil {
		d.Abort(ctx)
		return err
	}
	return nil
}

// readHeader returns the header section of a spooled message, up to the
// empty line, bounded.
func readHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return headerOf(f)
}

// headerOf reads the header section of a message from r, up to the empty
// line, bounded by maxDSNHeader, with CRLF line endings.
func headerOf(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, maxDSNHeader))
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || err != nil) {
			break
		}
		out.Write(bytes.TrimRight(line, "\r\n"))
		out.WriteString("\r\n")
		if err != nil {
			break
		}
	}
	return out.Bytes(), nil
}

// buildDSN writes an RFC 3464 report: a human-readable part, the
// machine-readable delivery-status, and the original header.
func buildDSN(hostname string, m *meta, idx []int, action string, header []byte, full bool, now, retryUntil time.Time) []byte {
	var rb [12]byte
	rand.Read(rb[:])
	boundary := "dsn-" + hex.EncodeToString(rb[:])
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	subject := "Undelivered Mail Returned to Sender"
	switch action {
	case actionDelayed:
		subject = "Delayed Mail (still being retried)"
	case actionDelivered, actionRelayed:
		subject = "Successful Mail Delivery Report"
	}
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", headerenc.Domain(hostname))
	w("To: %s", headerenc.Path(m.From))
	w("Subject: %s", subject)
	w("Date: %s", now.Format(time.RFC1123Z))
	w("Message-ID: <%s.%s@%s>", headerenc.Domain(m.ID), hex.EncodeToString(rb[:4]), headerenc.Domain(hostname))
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Description: Notification")
	w("")
	w("This is the mail system at host %s.", headerenc.Domain(hostname))
	w("")
	switch action {
	case actionDelayed:
		w("Your message could not be delivered yet to the recipients below.")
		w("It is still being retried; you do not need to send it again.")
	case actionDelivered:
		w("Your message was delivered to the recipients below, as you asked.")
	case actionRelayed:
		w("Your message was relayed to the recipients below, as you asked.")
		w("Their next hop does not report deliveries: no further notice will follow.")
	default:
		w("Your message could not be delivered to the recipients below.")
		w("This is a permanent error; the message was not delivered to them.")
	}
	w("Queue ID: %s, received %s.", headerenc.Text(m.ID), m.Arrived.Format(time.RFC1123Z))
	w("")
	for _, i := range idx {
		r := m.Recipients[i]
		line := headerenc.Path(r.Addr) + ": " + replyText(r)
		if host := remoteHost(r.Remote); host != "" {
			line = headerenc.Path(r.Addr) + ": host " + headerenc.Text(r.Remote) + " said: " + replyText(r)
		}
		w("%s", line)
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("Content-Description: Delivery report")
	w("")
	if m.EnvID != "" {
		w("Original-Envelope-Id: %s", headerenc.Text(m.EnvID))
	}
	w("Reporting-MTA: dns; %s", headerenc.Domain(hostname))
	w("X-Mailagent-Queue-ID: %s", headerenc.Text(m.ID))
	w("Arrival-Date: %s", m.Arrived.Format(time.RFC1123Z))
	for _, i := range idx {
		r := m.Recipients[i]
		w("")
		if r.ORcpt != "" {
			w("Original-Recipient: %s", originalRecipient(r.ORcpt))
		}
		w("Final-Recipient: %s", finalRecipient(r.Addr))
		w("Action: %s", action)
		w("Status: %s", statusCode(r, action))
		if host := remoteHost(r.Remote); host != "" {
			w("Remote-MTA: dns; %s", headerenc.Domain(host))
			w("Diagnostic-Code: smtp; %s", replyText(r))
		} else if r.Reply != "" {
			w("Diagnostic-Code: X-mailagent; %s", replyText(r))
		}
		if !r.Last.IsZero() {
			w("Last-Attempt-Date: %s", r.Last.Format(time.RFC1123Z))
		}
		if action == actionDelayed {
			w("Will-Retry-Until: %s", retryUntil.Format(time.RFC1123Z))
		}
	}
	w("")
	w("--%s", boundary)
	if full {
		w("Content-Type: message/rfc822")
		w("Content-Description: Undelivered message")
		w("")
		// The CRLF before the boundary belongs to the boundary: the
		// message's own last line break stays its own.
		b.Write(header)
		w("")
	} else {
		w("Content-Type: text/rfc822-headers")
		if action == actionDelivered || action == actionRelayed {
			w("Content-Description: Message headers")
		} else {
			w("Content-Description: Undelivered message headers")
		}
		w("")
		b.Write(header)
		w("")
	}
	w("--%s--", boundary)
	return b.Bytes()
}

// finalRecipient is the value of a Final-Recipient field (RFC 3464
// section 2.3.2): an ASCII address as an rfc822 addr-spec, any other as
// RFC 6533's utf-8 address type.
func finalRecipient(addr string) string {
	if isASCII(addr) {
		return "rfc822; " + headerenc.AddrSpec(addr)
	}
	return "utf-8; " + headerenc.Unitext(addr)
}

// originalRecipient is the value of an Original-Recipient field (RFC
// 3461 section 6.3.1) from a stored ORCPT, "type;address": an rfc822
// address as printable text, a utf-8 one as RFC 6533's unitext.
func originalRecipient(orcpt string) string {
	typ, addr, _ := strings.Cut(orcpt, ";")
	if strings.EqualFold(typ, "rfc822") && isASCII(addr) {
		return "rfc822;" + headerenc.Text(addr)
	}
	return "utf-8;" + headerenc.Unitext(addr)
}

// replyText renders a recipient's last reply as "550 5.1.1 text".
func replyText(r rcptState) string {
	if r.Code == 0 {
		return headerenc.Text(clean(r.Reply))
	}
	s := fmt.Sprintf("%d", r.Code)
	if r.Enhanced[0] > 0 {
		s += fmt.Sprintf(" %d.%d.%d", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
	}
	return s + " " + headerenc.Text(clean(r.Reply))
}

// statusCode is the RFC 3463 status for a recipient: its reply's enhanced
// code when it had one, else one derived from the reply code.
func statusCode(r rcptState, action string) string {
	if r.Enhanced[0] >= 2 && r.Enhanced[0] <= 5 {
		return fmt.Sprintf("%d.%d.%d", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
	}
	switch {
	case r.Code >= 500:
		return "5.0.0"
	case action == actionFailed:
		// Gave up on temporary failures: delivery time expired.
		return "4.4.7"
	default:
		return "4.0.0"
	}
}

// remoteHost extracts the host name from "host[address]".
func remoteHost(remote string) string {
	h, _, _ := strings.Cut(remote, "[")
	return h
}

// bytesBody is an in-memory mail.Body.
type bytesBody []byte

func (b bytesBody) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
func (b bytesBody) Len() int64                   { return int64(len(b)) }
