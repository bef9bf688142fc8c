package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	netmail "net/mail"
	"slices"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/maildir/sieve"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// maxReasonLen bounds the reject reason quoted in a notification or an
// LMTP reply.
const maxReasonLen = 512

// errNotSent is why a reject's notification was not staged (no queue
// that notifies): the message is kept instead.
var errNotSent = errors.New("no queue to notify the sender")

func uniqueID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "." + hex.EncodeToString(b)
}

// delivered reports whether msg already carries a Delivered-To field for
// addr: it has been through addr's delivery once, so sending it on again
// would loop (as Postfix's and Dovecot's loop check).
func delivered(msg *sieve.Message, addr string) bool {
	for _, f := range msg.Header {
		if strings.EqualFold(f.Name, "Delivered-To") && strings.EqualFold(strings.TrimSpace(f.Value), addr) {
			return true
		}
	}
	return false
}

// stageRedirect prepares, without sending, the redirect of msg to a.Address
// for u: from the message's envelope sender (or what RedirectSender makes
// of it), with the Delivered-To and Received fields of this delivery above
// the message (or the script's edited header). The Delivery returned is
// committed with the local copies.
func (f *SieveFilter) stageRedirect(ctx context.Context, u *store.User, env *mail.Envelope, body mail.Body, msg *sieve.Message, a sieve.Action) (mail.Delivery, error) {
	out := f.Route
	if out == nil {
		out = f.Outbound
	}
	if out == nil {
		return nil, errors.New("no outbound queue")
	}
	if delivered(msg, u.Address) || delivered(msg, a.Address) {
		return nil, errors.New("loop: the message was delivered to this address already")
	}
	from := env.From
	if from != "" && f.RedirectSender != nil {
		from = f.RedirectSender(u, env, a.Address)
	}
	src := body
	sign := false
	if a.Header != nil {
		h, changed := f.checkFrom(ctx, u, msg.Header, a.Header)
		src, sign = edited(msg, h), changed
	}
	now := time.Now()
	host := env.Hostname
	if host == "" {
		host = "localhost"
	}
	data := headerenc.Prepend(src,
		"Delivered-To: "+headerenc.AddrSpec(u.Address),
		"Received: by "+headerenc.Domain(host)+" (mailagent sieve redirect) id "+headerenc.Text(env.ID)+" for "+headerenc.Path(a.Address)+"; "+now.Format(time.RFC1123Z))
	renv := &mail.Envelope{ID: uniqueID(env.ID + ".redirect"), From: from, Generated: true,
		Received: now, Hostname: env.Hostname, SMTPUTF8: env.SMTPUTF8, EightBitMIME: env.EightBitMIME}
	if sign {
		data = f.sign(ctx, renv, data)
	}
	d, err := out.Start(ctx, renv)
	if err != nil {
		return nil, err
	}
	if err := d.AddRecipient(ctx, a.Address); err != nil {
		d.Abort(ctx)
		return nil, err
	}
	if err := d.Body(ctx, data); err != nil {
		d.Abort(ctx)
		return nil, err
	}
	return d, nil
}

// autoOrList reports whether msg is mail no one should answer
// automatically: Auto-Submitted other than "no" (RFC 3834), a mailing
// list's (RFC 2369/2919 fields) or bulk mail.
func autoOrList(msg *sieve.Message) bool {
	if v := strings.ToLower(firstField(msg, "Auto-Submitted")); v != "" && !strings.HasPrefix(v, "no") {
		return true
	}
	for _, n := range []string{"List-Id", "List-Post", "List-Unsubscribe", "List-Help"} {
		if firstField(msg, n) != "" {
			return true
		}
	}
	switch strings.ToLower(firstField(msg, "Precedence")) {
	case "bulk", "list", "junk":
		return true
	}
	return false
}

// rejectReply is the reply that refuses u's copy with the script's
// reason, cut to a bounded length; the notification and the LMTP reply
// encode it.
func rejectReply(reason string) *mail.Error {
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
	}
	if reason == "" {
		reason = "Message rejected by the recipient's filter"
	}
	return &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: reason}
}

// stageReject prepares the delivery status notification (RFC 3464,
// RFC 5429 section 2.1) telling the sender that u refused the message,
// with the script's reason. It is the queue's bounce, written from the
// same DSN parameters: the recipient's ORCPT and NOTIFY (carried by ctx)
// and the message's ENVID and RET. None is sent to the null sender, for
// automatic or list mail, nor when the recipient's NOTIFY leaves out
// failures (RFC 3461 section 4.1): ok is false and the message is
// dropped.
func (f *SieveFilter) stageReject(ctx context.Context, u *store.User, env *mail.Envelope, body mail.Body, msg *sieve.Message, reply *mail.Error) (d mail.Delivery, ok bool, err error) {
	dsn := mail.RcptDSNFrom(ctx)
	if env.From == "" || autoOrList(msg) || !dsn.Notify.Failure() {
		return nil, false, nil
	}
	b, isBouncer := f.Outbound.(mail.Bouncer)
	if !isBouncer {
		return nil, false, errNotSent
	}
	denv := *env
	denv.ID = uniqueID(env.ID + ".reject")
	d, err = b.Bounce(ctx, &denv, body, []mail.Failure{{Rcpt: u.Address, Err: reply, DSN: dsn}})
	if err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// owns reports whether u may send as addr: u's own address, or one
// MayUse allows. Any error counts as no (a directory failure too, the
// default sender being used then).
func (f *SieveFilter) owns(ctx context.Context, u *store.User, addr string) bool {
	if strings.EqualFold(addr, u.Address) {
		return true
	}
	if f.MayUse == nil {
		return false
	}
	err := f.MayUse(ctx, u.Address, addr)
	if err != nil {
		f.logger().Debug("sieve sender check", "user", u.Address, "address", addr, "err", err)
	}
	return err == nil
}

// fromValues are the values of h's From fields.
func fromValues(h []sieve.Field) []string {
	var out []string
	for _, fl := range h {
		if strings.EqualFold(fl.Name, "From") {
			out = append(out, strings.TrimSpace(fl.Value))
		}
	}
	return out
}

// checkFrom is the header a redirect sends: edited as the script left it
// when its From fields are the message's own or name only addresses u
// may use (changed is then whether they differ), else with the
// message's own From fields back in place of the script's.
func (f *SieveFilter) checkFrom(ctx context.Context, u *store.User, orig, edit []sieve.Field) (h []sieve.Field, changed bool) {
	was, now := fromValues(orig), fromValues(edit)
	if slices.Equal(was, now) {
		return edit, false
	}
	ok := len(now) > 0
	for _, v := range now {
		list, err := netmail.ParseAddressList(v)
		if err != nil || len(list) == 0 {
			ok = false
			break
		}
		for _, a := range list {
			ok = ok && f.owns(ctx, u, a.Address)
		}
	}
	if ok {
		return edit, true
	}
	f.logger().Info("sieve redirect: From set by the script not owned by the user; the message's own From is sent", "user", u.Address)
	var out []sieve.Field
	put := false
	for _, fl := range edit {
		if strings.EqualFold(fl.Name, "From") {
			if !put {
				out, put = append(out, fromFields(orig)...), true
			}
			continue
		}
		out = append(out, fl)
	}
	if !put {
		out = append(fromFields(orig), out...)
	}
	return out, false
}

func fromFields(h []sieve.Field) []sieve.Field {
	var out []sieve.Field
	for _, fl := range h {
		if strings.EqualFold(fl.Name, "From") {
			out = append(out, fl)
		}
	}
	return out
}

// sign is msg with Signer's signature fields above it, msg itself when
// there is no Signer or it does not sign.
func (f *SieveFilter) sign(ctx context.Context, env *mail.Envelope, msg mail.Body) mail.Body {
	if f.Signer == nil {
		return msg
	}
	sig, err := f.Signer.Sign(ctx, env, msg)
	if err != nil {
		f.logger().Warn("sieve: outgoing message not signed", "id", env.ID, "err", err)
		return msg
	}
	return headerenc.Prepend(msg, sig...)
}
