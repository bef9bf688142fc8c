package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// Replies of the session itself.
var (
	errNeedTLS       = &mail.Error{Code: 530, EnhancedCode: [3]int{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errNeedAuth      = &mail.Error{Code: 530, EnhancedCode: [3]int{5, 7, 0}, Message: "Authentication required"}
	errAuthNeedsTLS  = &mail.Error{Code: 538, EnhancedCode: [3]int{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
	errNoAuth        = &mail.Error{Code: 502, EnhancedCode: [3]int{5, 5, 1}, Message: "AUTH not available on this service"}
	errUnknownMech   = &mail.Error{Code: 504, EnhancedCode: [3]int{5, 5, 4}, Message: "Unrecognized authentication mechanism"}
	errAuthFailed    = &mail.Error{Code: 535, EnhancedCode: [3]int{5, 7, 8}, Message: "Authentication credentials invalid"}
	errAuthThrottled = &mail.Error{Code: 454, EnhancedCode: [3]int{4, 7, 0}, Message: "Too many failed logins, try again later"}
	errAuthTemp      = &mail.Error{Code: 454, EnhancedCode: [3]int{4, 7, 0}, Message: "Temporary authentication failure"}
	errRcptTooMany   = &mail.Error{Code: 421, EnhancedCode: [3]int{4, 7, 0}, Message: "Too many refused recipients, closing connection"}
	errAuthTooMany   = &mail.Error{Code: 421, EnhancedCode: [3]int{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
	errShuttingDown  = &mail.Error{Code: 421, EnhancedCode: [3]int{4, 3, 2}, Message: "Service shutting down"}
	errNullSender    = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 7, 1}, Message: "Null sender not allowed for submission"}
	errNotOwner      = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 7, 1}, Message: "Sender address not owned by authenticated user"}
	errLineTooLong   = &mail.Error{Code: 500, EnhancedCode: [3]int{5, 5, 2}, Message: "Line too long"}
	errTemp          = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Temporary failure, try again later"}
	errNoStorage     = &mail.Error{Code: 452, EnhancedCode: [3]int{4, 3, 1}, Message: "Insufficient system storage, try again later"}
	errNotAccepted   = &mail.Error{Code: 421, EnhancedCode: [3]int{4, 3, 0}, Message: "Service not available"}
	errNestedMail    = &mail.Error{Code: 503, EnhancedCode: [3]int{5, 5, 1}, Message: "Nested MAIL command"}
	errHeaderTooLong = &mail.Error{Code: 552, EnhancedCode: [3]int{5, 3, 4}, Message: "Message header section too long"}
	errNoStatus      = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Delivery status unknown, try again later"}
	errHeloFirst     = &mail.Error{Code: 503, EnhancedCode: [3]int{5, 5, 1}, Message: "Send EHLO again after STARTTLS"}
	// A source route (RFC 5321 section 4.1.2, "@a,@b:user@c") is a way
	// to make a server relay; go-smtp drops it from the path without a
	// word, so the session checks the command line as it arrived. The
	// replies are Postfix's for envelope syntax it refuses
	// (strict_rfc821_envelopes): 501 with 5.1.7 for the sender and
	// 5.1.3 for a recipient.
	errRouteFrom = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 1, 7}, Message: "Bad sender address syntax: source routes are not accepted"}
	errRouteTo   = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address syntax: source routes are not accepted"}
)

// session is one go-smtp session: from HELO/EHLO/LHLO to QUIT, or to
// STARTTLS, after which go-smtp starts a new one.
type session struct {
	srv    *Server
	c      *conn
	gc     *gosmtp.Conn
	epoch  int // the connection's TLS epoch base was taken in
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	base   mail.Envelope // what every transaction of the session shares

	// mu serialises the session's methods: with BDAT (CHUNKING), go-smtp
	// runs Data in a goroutine of its own while RSET or QUIT may arrive.
	mu    sync.Mutex
	user  *store.User    // authenticated user
	mech  string         // the SASL mechanism user logged in with
	env   *mail.Envelope // the transaction in progress; nil between
	extra []string       // header fields from checks for env
	d     mail.Delivery
	// filters follow env (Checks.Filters); tmp are the spools of the
	// messages they edited, released with the transaction.
	filters []mail.FilterSession
	tmp     []*spool
	// conns are the session's state of the filters that follow a whole
	// session (mail.SessionFilter), by index in Checks.Filters; nil for
	// the others.
	conns []mail.ConnFilter
}

// newSession is go-smtp's Backend: it runs when the client introduces
// itself.
func (s *Server) newSession(gc *gosmtp.Conn) (gosmtp.Session, error) {
	c, ok := gc.Conn().(*conn)
	if !ok {
		// go-smtp writes a plain error's text to the client.
		s.log.Error("session on a connection this server did not accept")
		return nil, errNotAccepted
	}
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{srv: s, c: c, gc: gc, ctx: ctx, cancel: cancel}
	ss.base = mail.Envelope{RemoteAddr: gc.Conn().RemoteAddr(), Helo: gc.Hostname(), Hostname: s.opts.Hostname}
	ss.epoch, _ = c.tlsEpoch()
	ss.base.TLS = c.tlsState()
	// The session ID ties a client's replies to the log lines with
	// their details.
	ss.log = s.log.With("session", newID(), "role", s.opts.Role.String(), "remote", gc.Conn().RemoteAddr().String())
	c.setSessionLog(ss.log)
	if s.opts.Role == MX && !c.checked {
		env := ss.base
		env.Values = map[any]any{}
		for _, ch := range s.opts.Checks.Connect {
			if err := applyVerdict(ch.CheckConnect(ctx, &env), &env, &c.extra); err != nil {
				ss.log.Info("connection refused by check", "helo", env.Helo, "err", err)
				cancel()
				c.extra = nil
				c.endAfterReply()
				return nil, err
			}
		}
		c.results, c.values, c.checked = env.Results, env.Values, true
	}
	ss.connectFilters()
	return ss, nil
}

// sync catches up with the connection: STARTTLS (which the connection
// runs, not go-smtp) changes the TLS state and forgets the login, and
// asks for a new EHLO, whose name go-smtp keeps.
func (ss *session) sync() error {
	epoch, needHelo := ss.c.tlsEpoch()
	if epoch != ss.epoch {
		ss.epoch = epoch
		ss.base.TLS = ss.c.tlsState()
		ss.user, ss.mech = nil, ""
	}
	ss.base.Helo = ss.gc.Hostname()
	if needHelo {
		return errHeloFirst
	}
	return nil
}

// Mail implements gosmtp.Session.
func (ss *session) Mail(from string, opts *gosmtp.MailOptions) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.sync(); err != nil {
		return err
	}
	if ss.c.sourceRouted() {
		return errRouteFrom
	}
	if e := checkPath(from, true, opts != nil && opts.UTF8); e != nil {
		ss.log.Info("sender refused: bad address", "from", from, "reply", e.Message)
		return e
	}
	if opts != nil && len(opts.EnvelopeID) > maxEnvID {
		return errDSNParam
	}
	srv := ss.srv
	if srv.opts.Role == Submission {
		if ss.base.TLS == nil {
			return errNeedTLS
		}
		if ss.user == nil {
			return errNeedAuth
		}
	}
	if ss.env != nil {
		return errNestedMail
	}
	if !ss.c.beginTxn() {
		return errShuttingDown
	}
	env := ss.base
	env.ID = newID()
	env.From = from
	env.Received = srv.opts.now()
	env.Results = append([]mail.AuthResult(nil), ss.c.results...)
	env.Values = maps.Clone(ss.c.values)
	if env.Values == nil {
		env.Values = map[any]any{}
	}
	if opts != nil {
		env.SMTPUTF8 = opts.UTF8
		env.EightBitMIME = opts.Body == gosmtp.Body8BitMIME
		env.DSNReturn, env.EnvID = string(opts.Return), opts.EnvelopeID
	}
	extra := append([]string(nil), ss.c.extra...)
	if ss.user != nil {
		env.AuthUser, env.AuthMechanism = ss.user.Address, ss.mech
		if err := ss.checkSender(from); err != nil {
			ss.c.endTxn()
			return err
		}
	}
	if srv.opts.Role == MX {
		for _, ch := range srv.opts.Checks.Mail {
			if err := applyVerdict(ch.CheckMail(ss.ctx, &env), &env, &extra); err != nil {
				ss.log.Info("sender refused by check", "id", env.ID, "from", from, "err", err)
				ss.c.endTxn()
				return err
			}
		}
	}
	if err := ss.openFilters(&env); err != nil {
		ss.c.endTxn()
		return err
	}
	ss.env, ss.extra = &env, extra
	return nil
}

// checkSender enforces that a submitting user sends only as an address
// they may use (see mayUse), and never with the null sender.
func (ss *session) checkSender(from string) error {
	if from == "" {
		return errNullSender
	}
	if _, err := store.ParseAddress(from); err != nil {
		var ae *store.AddressError
		if errors.As(err, &ae) {
			return &mail.Error{Code: 553, EnhancedCode: [3]int{5, 1, 7}, Message: "Bad sender address: " + ae.Reason}
		}
		return ss.reply(err)
	}
	err := ss.mayUse(from)
	if err == errNotOwner {
		ss.log.Info("sender refused: not owned", "user", ss.user.Address, "from", from)
	}
	return err
}

// isNoSuchAddress reports the resolution errors that mean an address
// delivers to no mailbox, as opposed to a directory failure.
func isNoSuchAddress(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotLocal) ||
		errors.Is(err, store.ErrDisabled) || errors.Is(err, store.ErrLoop)
}

// Rcpt implements gosmtp.Session.
func (ss *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	err := ss.rcpt(to, opts)
	var e *mail.Error
	max := ss.srv.opts.MaxRecipientErrors
	if err == nil || max <= 0 || ss.srv.opts.Role == LMTP || !errors.As(err, &e) || e.Code < 500 {
		return err
	}
	ss.c.mu.Lock()
	ss.c.rcptFails++
	n := ss.c.rcptFails
	ss.c.mu.Unlock()
	if n < max {
		return err
	}
	ss.log.Info("too many refused recipients, closing the connection", "refused", n)
	ss.c.endAfterReply()
	return errRcptTooMany
}

func (ss *session) rcpt(to string, opts *gosmtp.RcptOptions) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.env == nil {
		return &mail.Error{Code: 503, EnhancedCode: [3]int{5, 5, 1}, Message: "MAIL first"}
	}
	if ss.c.sourceRouted() {
		return errRouteTo
	}
	if e := checkPath(to, false, ss.env.SMTPUTF8); e != nil {
		ss.log.Info("recipient refused: bad address", "id", ss.env.ID, "rcpt", to, "reply", e.Message)
		return e
	}
	if err := ss.rcptFilters(to); err != nil {
		return err
	}
	if ss.d == nil {
		d, err := ss.srv.opts.Target.Start(ss.ctx, ss.env)
		if err != nil {
			return ss.reply(err)
		}
		ss.d = d
	}
	dsn, e := rcptDSN(opts)
	if e != nil {
		return e
	}
	if err := ss.d.AddRecipient(mail.WithRcptDSN(ss.ctx, dsn), to); err != nil {
		return ss.reply(err)
	}
	ss.env.Recipients = append(ss.env.Recipients, to)
	return nil
}

// Data implements gosmtp.Session: 250 only once every copy is durable.
func (ss *session) Data(r io.Reader) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg, closeBody, err := ss.receive(r)
	if err == errDiscarded {
		// Told apart from a delivery by nothing, its ID included.
		id := ss.env.ID
		ss.endTransaction()
		ss.c.messageAccepted()
		return queuedAs(id)
	}
	if err != nil {
		ss.endTransaction()
		return err
	}
	defer closeBody()
	return ss.deliverWhole(msg)
}

// deliverWhole delivers msg to every recipient or to none, ends the
// transaction and returns its reply: the 250 naming its ID, or the
// failure's.
func (ss *session) deliverWhole(msg mail.Body) error {
	err := ss.d.Body(ss.ctx, msg)
	if err == nil {
		err = ss.d.Commit(ss.ctx)
	}
	if err != nil {
		ss.log.Info("message not delivered", "id", ss.env.ID, "err", err)
		ss.endTransaction()
		return ss.reply(err)
	}
	ss.log.Info("message delivered", "id", ss.env.ID, "from", ss.env.From,
		"rcpts", len(ss.env.Recipients), "size", msg.Len())
	id := ss.env.ID
	ss.d = nil
	ss.endTransaction()
	ss.c.messageAccepted()
	return queuedAs(id)
}

// queuedAs is the 250 reply naming the transaction's ID, as Postfix's
// "queued as": the ID of the Received field and of every log line about
// the message, which the sender can quote to find it. go-smtp writes
// an *SMTPError's code as it is, so a 250 goes out as the success it is.
func queuedAs(id string) error {
	return &gosmtp.SMTPError{Code: 250, EnhancedCode: gosmtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id}
}

// LMTPData implements gosmtp.LMTPSession: a status per recipient, each
// given once that recipient's copies are durable. Each success names the
// transaction's ID as the SMTP 250 does ("250 2.0.0 <rcpt> OK: queued as
// ID", where Dovecot says "<rcpt> ID Saved"), so the client's log of
// every recipient leads to the same lines of ours.
func (ss *session) LMTPData(r io.Reader, status gosmtp.StatusCollector) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	// The client gets a status for each recipient it gave, whatever the
	// filters made of the envelope.
	var given []string
	var saved error
	if ss.env != nil {
		given = slices.Clone(ss.env.Recipients)
		saved = queuedAs(ss.env.ID)
	}
	msg, closeBody, err := ss.receive(r)
	if err == errDiscarded {
		for _, rcpt := range given {
			status.SetStatus(rcpt, saved)
		}
		ss.endTransaction()
		return nil
	}
	if err != nil {
		ss.endTransaction()
		return err
	}
	defer closeBody()
	pd, ok := ss.d.(mail.PartialDelivery)
	if !ok {
		// One status for all, which go-smtp gives each recipient.
		return ss.deliverWhole(msg)
	}
	var collected mail.StatusMap
	pd.BodyNonAtomic(ss.ctx, &collected, msg)
	got := collected.Results()
	cerr := ss.d.Commit(ss.ctx)
	if cerr != nil {
		_ = ss.d.Abort(context.WithoutCancel(ss.ctx))
	}
	delivered := 0
	for _, rcpt := range ss.env.Recipients {
		err, ok := got[rcpt]
		switch {
		case !ok:
			err = errNoStatus
		case err == nil:
			err = cerr
		}
		if err != nil {
			ss.log.Info("recipient not delivered", "id", ss.env.ID, "rcpt", rcpt, "err", err)
		} else {
			delivered++
		}
		if !slices.Contains(given, rcpt) {
			// Added by a filter: the client did not name it and gets
			// no status for it, as a milter's added recipient over SMTP.
			continue
		}
		if err != nil {
			status.SetStatus(rcpt, ss.reply(err))
		} else {
			status.SetStatus(rcpt, saved)
		}
	}
	for _, rcpt := range given {
		if !slices.Contains(ss.env.Recipients, rcpt) {
			// Removed by a filter: done with, as a discard is.
			ss.log.Info("recipient removed by filter", "id", ss.env.ID, "rcpt", rcpt)
			status.SetStatus(rcpt, saved)
		}
	}
	if delivered > 0 {
		ss.log.Info("message delivered", "id", ss.env.ID, "from", ss.env.From,
			"rcpts", delivered, "size", msg.Len())
	}
	ss.d = nil
	ss.endTransaction()
	return nil
}

// receive reads DATA to its real end, refuses what must not be stored,
// and returns the message with this server's header fields in front.
func (ss *session) receive(r io.Reader) (mail.Body, func(), error) {
	if ss.env == nil || ss.d == nil {
		return nil, nil, &mail.Error{Code: 503, EnhancedCode: [3]int{5, 5, 1}, Message: "No valid recipients"}
	}
	// The connection's scanner checked the bytes on the wire: it reports
	// a bare CR or LF, or a NUL, once the data has been read to its end.
	sp := newSpool(ss.srv.opts.SpoolDir)
	_, err := io.Copy(sp, r)
	if err == nil {
		err = ss.c.dataVerdict()
	}
	if err != nil {
		sp.Close()
		var se *mail.Error
		switch {
		case errors.As(err, &se):
			ss.log.Info("message refused", "id", ss.env.ID, "err", se)
			return nil, nil, se
		case errors.Is(err, gosmtp.ErrTooLongLine):
			ss.log.Info("message refused", "id", ss.env.ID, "err", errLineTooLong)
			return nil, nil, errLineTooLong
		}
		return nil, nil, ss.reply(fmt.Errorf("DATA not received: %w", err))
	}
	// Every inbound path (MX, submission, LMTP) drops the
	// Authentication-Results fields that claim to be this host's: over
	// LMTP too, since the MTA in front may not have.
	if sp, err = ss.stripAuthResults(sp); err != nil {
		return nil, nil, err
	}
	msg, err := ss.prepare(sp)
	if err != nil {
		sp.Close()
		return nil, nil, err
	}
	if msg, err = ss.runFilters(msg); err != nil {
		sp.Close()
		return nil, nil, err
	}
	if err := ss.sign(&msg); err != nil {
		sp.Close()
		return nil, nil, err
	}
	return msg, func() { sp.Close() }, nil
}

// stripAuthResults removes Authentication-Results fields that claim to
// come from this host, so that only the ones it adds itself carry its
// name (RFC 8601 section 5). It consumes sp and returns the message to
// go on with.
func (ss *session) stripAuthResults(sp *spool) (*spool, error) {
	r, err := sp.Open()
	if err != nil {
		sp.Close()
		return nil, ss.reply(err)
	}
	defer r.Close()
	out, removed, err := dnsauth.StripAuthResults(r, ss.srv.opts.Hostname)
	switch {
	case errors.Is(err, dnsauth.ErrHeaderTooLong):
		sp.Close()
		return nil, errHeaderTooLong
	case err != nil:
		sp.Close()
		return nil, ss.reply(err)
	case removed == 0:
		return sp, nil
	}
	ss.log.Info("forged Authentication-Results removed", "id", ss.env.ID, "count", removed)
	clean := newSpool(ss.srv.opts.SpoolDir)
	_, err = io.Copy(clean, out)
	sp.Close()
	if err != nil {
		clean.Close()
		return nil, ss.reply(err)
	}
	return clean, nil
}

// prepare runs the message checks and adds the header fields of the
// role: Authentication-Results and the checks' fields (MX), Message-ID
// and Date (Submission), and Received (all). The filters and the
// signer run after it (see receive and Checks).
func (ss *session) prepare(sp *spool) (mail.Body, error) {
	opts := &ss.srv.opts
	env := ss.env
	limit := headScanLimit
	if opts.Role == Submission {
		// The whole header, as far as the signer would read it: a From
		// field past the usual scan must not escape the check.
		limit = dnsauth.MaxHeaderBytes
	}
	h := scanHeader(sp.head(limit))
	if h.received > maxHops {
		return nil, errTooManyHops
	}
	var msg mail.Body = sp
	if opts.Role == Submission && ss.user != nil {
		// Before signing: a message whose From the user may not use is
		// never signed for that From's domain, because it is refused.
		if err := ss.checkHeaderSenders(h.senders); err != nil {
			return nil, err
		}
	}
	if opts.Role == Submission {
		var add []string
		if !h.messageID {
			add = append(add, "Message-ID: "+newMessageID(opts.Hostname))
		}
		if !h.date {
			add = append(add, "Date: "+env.Received.Format(rfc5322Date))
		}
		msg = headerenc.Prepend(msg, add...)
	}
	proto := protocolName(opts.Role == LMTP, true, env.TLS != nil, env.AuthUser != "")
	msg = headerenc.Prepend(msg, receivedHeader(opts.Hostname, proto, env))
	if opts.Role == MX {
		for _, ch := range opts.Checks.Message {
			if err := applyVerdict(ch.CheckMessage(ss.ctx, env, sp), env, &ss.extra); err != nil {
				ss.log.Info("message refused by check", "id", env.ID, "err", err)
				return nil, err
			}
		}
		hdrs := ss.extra
		if len(env.Results) > 0 {
			hdrs = append([]string{authResultsHeader(opts.Hostname, env.Results)}, hdrs...)
		}
		msg = headerenc.Prepend(msg, hdrs...)
	}
	return msg, nil
}

// sign adds the Signer's fields to a submitted message, last of all so
// that the signature covers what the filters changed.
func (ss *session) sign(msg *mail.Body) error {
	opts := &ss.srv.opts
	if opts.Role != Submission || opts.Signer == nil {
		return nil
	}
	sig, err := opts.Signer.Sign(ss.ctx, ss.env, *msg)
	if err != nil {
		ss.log.Warn("signing failed", "id", ss.env.ID, "err", err)
		return ss.reply(err)
	}
	*msg = headerenc.Prepend(*msg, sig...)
	return nil
}

// rfc5322Date is the date-time format of RFC 5322 section 3.3.
const rfc5322Date = "Mon, 02 Jan 2006 15:04:05 -0700"

// reply turns an error from a target or hook into the reply to send:
// protocol errors (*Error, which their makers write for the client) as
// they are, anything else as a fixed reply of its class. An internal
// error's text (file paths, system errors) never reaches the client: it
// goes to the log, whose lines carry the session ID.
func (ss *session) reply(err error) error {
	if err == nil {
		return nil
	}
	var se *mail.Error
	if errors.As(err, &se) {
		return se
	}
	r := replyClass(err)
	txn := ""
	if ss.env != nil {
		txn = ss.env.ID
	}
	ss.log.Warn("temporary failure", "id", txn, "reply", r.Code, "err", err)
	return r
}

// replyClass is the fixed reply for an internal error: storage
// exhausted (RFC 5321's 452, RFC 3463's 4.3.1), or any other local
// failure (451 4.3.0). Both are temporary: the client keeps the message
// and tries again.
func replyClass(err error) *mail.Error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errNoStorage
	}
	return errTemp
}

// endTransaction discards the transaction in progress, if any.
func (ss *session) endTransaction() {
	if ss.d != nil {
		_ = ss.d.Abort(context.WithoutCancel(ss.ctx))
		ss.d = nil
	}
	ss.closeFilters()
	if ss.env != nil {
		ss.env, ss.extra = nil, nil
		ss.c.endTxn()
	}
}

// Reset implements gosmtp.Session.
func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.endTransaction()
}

// Logout implements gosmtp.Session.
func (ss *session) Logout() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.endTransaction()
	ss.disconnectFilters()
	ss.cancel()
	return nil
}

// AuthMechanisms implements gosmtp.AuthSession: PLAIN and LOGIN, and only
// on a submission server over TLS (RFC 4954 section 4).
func (ss *session) AuthMechanisms() []string {
	ss.mu.Lock()
	_ = ss.sync()
	tlsOn := ss.base.TLS != nil
	ss.mu.Unlock()
	if ss.srv.opts.Role == Submission && tlsOn {
		return ss.srv.opts.Authenticator.Mechanisms()
	}
	return nil
}

// Auth implements gosmtp.AuthSession.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.srv.opts.Role != Submission {
		return nil, errNoAuth
	}
	ss.mu.Lock()
	err := ss.sync()
	tlsOn := ss.base.TLS != nil
	ss.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !tlsOn {
		return nil, errAuthNeedsTLS
	}
	srv, err := ss.srv.opts.Authenticator.NewSASLServer(ss.ctx, mech, ss.base.RemoteAddr, func(u *store.User) error {
		ss.user, ss.mech = u, strings.ToUpper(mech)
		ss.c.loggedIn()
		ss.log.Info("authenticated", "user", u.Address)
		return nil
	})
	if err != nil {
		return nil, errUnknownMech
	}
	return &saslReplies{srv: srv, ss: ss, mech: mech}, nil
}

// saslReplies turns the errors of auth's SASL servers into replies and
// counts failed logins on the connection.
type saslReplies struct {
	srv  sasl.Server
	ss   *session
	mech string
}

func (s *saslReplies) Next(resp []byte) ([]byte, bool, error) {
	if e := checkAuthzid(s.mech, resp); e != nil {
		s.ss.log.Info("authentication refused: bad authorization identity")
		return nil, true, e
	}
	ch, done, err := s.srv.Next(resp)
	if err == nil {
		return ch, done, nil
	}
	ss := s.ss
	switch {
	case errors.Is(err, auth.ErrThrottled):
		err = ss.loginFailed(errAuthThrottled)
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused),
		errors.Is(err, auth.ErrMalformedResponse), errors.Is(err, sasl.ErrUnexpectedClientResponse):
		err = ss.loginFailed(errAuthFailed)
	default:
		ss.log.Warn("authentication error", "err", err)
		err = errAuthTemp
	}
	return nil, true, err
}

// loginFailed counts a failed login on the connection; the last one
// allowed ends it.
func (ss *session) loginFailed(reply *mail.Error) error {
	ss.c.mu.Lock()
	ss.c.authFails++
	n := ss.c.authFails
	ss.c.mu.Unlock()
	if n >= ss.srv.opts.MaxAuthFailures {
		ss.c.endAfterReply()
		return errAuthTooMany
	}
	return reply
}

var (
	_ gosmtp.LMTPSession = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)
