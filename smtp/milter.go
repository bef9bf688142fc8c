package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	milter "github.com/d--j/go-milter"
	"github.com/mailagent/mailagent/smtp/mail"
)

// MilterFailure is what a Milter does when its filter cannot be
// reached, times out or breaks the protocol: Postfix's
// milter_default_action.
type MilterFailure int

const (
	// MilterTempfail refuses with 451 4.7.1, so the client retries
	// later (Postfix's default).
	MilterTempfail MilterFailure = iota
	// MilterAccept goes on as if the milter were not configured.
	MilterAccept
	// MilterReject refuses with 550 5.7.1.
	MilterReject
)

// ParseMilterFailure reads "tempfail", "accept" or "reject" (Postfix's
// milter_default_action values).
func ParseMilterFailure(s string) (MilterFailure, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "tempfail":
		return MilterTempfail, nil
	case "accept":
		return MilterAccept, nil
	case "reject":
		return MilterReject, nil
	}
	return 0, fmt.Errorf("smtp: milter default action %q: want tempfail, accept or reject", s)
}

// Default milter timeouts, Postfix's milter_connect_timeout,
// milter_command_timeout and milter_content_timeout.
const (
	DefaultMilterConnectTimeout = 30 * time.Second
	DefaultMilterCommandTimeout = 30 * time.Second
	DefaultMilterContentTimeout = 300 * time.Second
)

var (
	errMilterTempfail = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 7, 1}, Message: "Service unavailable - try again later"}
	errMilterReject   = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: "Command rejected"}
)

// Milter is a Filter that hands each transaction to a mail filter over
// the Sendmail milter protocol (version 6), as Postfix's smtpd_milters
// do: rspamd's proxy worker, spamass-milter, OpenDKIM, OpenDMARC,
// ClamAV's milter. The filter sees connect, HELO, MAIL, each RCPT, the
// header fields, the body and end-of-message, with the macros Postfix
// sends, and its replies and modifications become the Verdict. One
// milter connection serves a whole SMTP session (see Connect). Set the
// fields before use.
type Milter struct {
	// Address is the milter's socket in Postfix's notation,
	// "inet:host:port" or "unix:/path", or a plain "host:port".
	Address string
	// Failure is what happens when the milter is down, slow or
	// broken. The zero value is MilterTempfail.
	Failure MilterFailure
	// ConnectTimeout, CommandTimeout and ContentTimeout bound the
	// connection, each command before the message, and each part of
	// the message (header fields, body, end-of-message); zero means the
	// Default values.
	ConnectTimeout, CommandTimeout, ContentTimeout time.Duration
	// DaemonName is the {daemon_name} macro; empty means "mailagent".
	DaemonName string
	// Log receives what the milter did; nil means discard.
	Log *slog.Logger
}

// ParseMilterAddress splits Postfix's "inet:host:port", "unix:/path"
// (or a bare "host:port") into a network and an address.
func ParseMilterAddress(s string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(s, "inet:"):
		network, address = "tcp", strings.TrimPrefix(s, "inet:")
	case strings.HasPrefix(s, "inet6:"):
		network, address = "tcp6", strings.TrimPrefix(s, "inet6:")
	case strings.HasPrefix(s, "unix:"):
		network, address = "unix", strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "/"):
		network, address = "unix", s
	default:
		network, address = "tcp", s
	}
	if network != "unix" {
		if _, _, err := net.SplitHostPort(address); err != nil {
			return "", "", fmt.Errorf("smtp: milter address %q: %w", s, err)
		}
	}
	if address == "" {
		return "", "", fmt.Errorf("smtp: milter address %q is empty", s)
	}
	return network, address, nil
}

func (m *Milter) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// stageConn is the milter connection: the library sets a deadline
// before each read and write, and stageConn moves it to the timeout of
// the stage in progress.
type stageConn struct {
	net.Conn
	timeout atomic.Int64
}

func (c *stageConn) deadline(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Now().Add(time.Duration(c.timeout.Load()))
}

func (c *stageConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.deadline(t)) }
func (c *stageConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.deadline(t))
}
func (c *stageConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.deadline(t)) }

// stageDialer dials the milter and hands the connection to the session
// being opened.
type stageDialer struct {
	d    net.Dialer
	last *stageConn
	cmd  time.Duration
}

func (sd *stageDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := sd.d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	sc := &stageConn{Conn: c}
	sc.timeout.Store(int64(sd.cmd))
	sd.last = sc
	return sc, nil
}

// milterMacros are the macros sent at each stage: Postfix's defaults
// (milter_connect_macros, milter_helo_macros, milter_mail_macros,
// milter_rcpt_macros, milter_data_macros, milter_end_of_header_macros
// and milter_end_of_data_macros), with the client's address and names
// at connect as Postfix also makes them available there.
var milterMacros = [][]milter.MacroName{
	milter.StageConnect: {milter.MacroMTAFQDN, milter.MacroDaemonName, milter.MacroMTAVersion, milter.MacroRFC1413AuthInfo, milter.MacroClientAddr, milter.MacroClientPort, milter.MacroClientName, milter.MacroClientPTR, milter.MacroDaemonAddr, milter.MacroDaemonPort},
	milter.StageHelo:    {milter.MacroTlsVersion, milter.MacroCipher, milter.MacroCipherBits, milter.MacroCertSubject, milter.MacroCertIssuer},
	milter.StageMail:    {milter.MacroQueueId, milter.MacroAuthType, milter.MacroAuthAuthen, milter.MacroAuthAuthor, milter.MacroMailAddr, milter.MacroMailHost, milter.MacroMailMailer},
	milter.StageRcpt:    {milter.MacroQueueId, milter.MacroRcptAddr, milter.MacroRcptHost, milter.MacroRcptMailer},
	milter.StageData:    {milter.MacroQueueId},
	milter.StageEOM:     {milter.MacroQueueId},
	milter.StageEOH:     {milter.MacroQueueId},
}

// Open implements Filter for a server that does not follow sessions: a
// milter connection of its own for this one transaction.
func (m *Milter) Open(ctx context.Context, env *mail.Envelope) (mail.FilterSession, mail.Verdict) {
	mc := m.Connect(ctx, env).(*milterConn)
	fs, v := mc.Open(ctx, env)
	if fs == nil {
		mc.Close()
		return nil, v
	}
	ms := fs.(*milterSession)
	ms.own = true
	return ms, v
}

// Connect implements mail.SessionFilter: it connects to the milter and
// sends connect and HELO, once for the SMTP session, as Postfix does.
// Every transaction of the session then uses this connection, with an
// abort between messages; a connection that failed is made again at the
// next MAIL.
func (m *Milter) Connect(ctx context.Context, env *mail.Envelope) mail.ConnFilter {
	mc := &milterConn{m: m}
	mc.pending = mc.dial(env)
	return mc
}

// milterConn is one SMTP session's connection to the milter.
type milterConn struct {
	m      *Milter
	s      *milter.ClientSession // nil when not connected
	macros *milter.MacroBag
	conn   *stageConn
	// helo and tls are the HELO name and TLS state last sent.
	helo string
	tls  *tls.ConnectionState
	// decided is the milter's answer to connect or HELO, which holds
	// for the rest of the session: accept (not consulted again) or a
	// refusal of every transaction.
	decided *mail.Verdict
	// pending is the failure of the connection made at Connect, which
	// the first transaction reports instead of connecting again.
	pending error
}

// dial connects to the milter and sends connect and HELO.
func (mc *milterConn) dial(env *mail.Envelope) error {
	m := mc.m
	network, address, err := ParseMilterAddress(m.Address)
	if err != nil {
		m.log().Error("milter misconfigured", "err", err)
		return err
	}
	sd := &stageDialer{d: net.Dialer{Timeout: orDefault(m.ConnectTimeout, DefaultMilterConnectTimeout)},
		cmd: orDefault(m.CommandTimeout, DefaultMilterCommandTimeout)}
	opts := []milter.Option{
		milter.WithDialer(sd),
		milter.WithActions(milter.AllClientSupportedActionMasks),
		// The stage timeouts are applied by stageConn; these only make
		// the library set a deadline at all.
		milter.WithReadTimeout(time.Hour), milter.WithWriteTimeout(time.Hour),
	}
	for stage, names := range milterMacros {
		opts = append(opts, milter.WithMacroRequest(milter.MacroStage(stage), names))
	}
	client := milter.NewClient(network, address, opts...)
	mc.macros = m.connectMacros(env)
	s, err := client.Session(mc.macros)
	if err != nil {
		return err
	}
	mc.s, mc.conn = s, sd.last
	family, host, port := milter.FamilyUnknown, "", uint16(0)
	if ta, ok := env.RemoteAddr.(*net.TCPAddr); ok {
		family, host, port = milter.FamilyInet, ta.IP.String(), uint16(ta.Port)
		if ta.IP.To4() == nil {
			family = milter.FamilyInet6
		}
	}
	act, err := s.Conn(clientName(env), family, port, host)
	if err != nil {
		mc.drop()
		return err
	}
	if v, stop := actionVerdict(act); stop {
		mc.decide(v)
		return nil
	}
	return mc.sendHelo(env)
}

// sendHelo sends HELO with the TLS macros; again when the client
// introduced itself anew (EHLO after STARTTLS), as Postfix does.
func (mc *milterConn) sendHelo(env *mail.Envelope) error {
	mc.m.tlsMacros(mc.macros, env)
	act, err := mc.s.Helo(env.Helo)
	if err != nil {
		mc.drop()
		return err
	}
	mc.helo, mc.tls = env.Helo, env.TLS
	if v, stop := actionVerdict(act); stop {
		mc.decide(v)
	}
	return nil
}

// decide keeps the milter's answer to connect or HELO for the session
// and ends the connection: the milter has nothing more to see.
func (mc *milterConn) decide(v mail.Verdict) {
	mc.decided = &v
	if mc.s != nil {
		_ = mc.s.Close()
		mc.s = nil
	}
}

// drop forgets a connection that failed; the next transaction makes a
// new one.
func (mc *milterConn) drop() {
	if mc.s != nil {
		_ = mc.s.Close()
		mc.s = nil
	}
}

// Open implements mail.ConnFilter: it sends MAIL on the session's
// connection, connecting again first if the last one failed.
func (mc *milterConn) Open(ctx context.Context, env *mail.Envelope) (mail.FilterSession, mail.Verdict) {
	m := mc.m
	if err := mc.pending; err != nil {
		mc.pending = nil
		return nil, m.failed(env, err)
	}
	if mc.decided == nil && mc.s == nil {
		m.log().Debug("milter reconnect", "id", env.ID, "milter", m.Address)
		if err := mc.dial(env); err != nil {
			return nil, m.failed(env, err)
		}
	}
	if mc.decided == nil && (env.Helo != mc.helo || env.TLS != mc.tls) {
		if err := mc.sendHelo(env); err != nil {
			return nil, m.failed(env, err)
		}
	}
	if d := mc.decided; d != nil {
		// Accepted at connect or HELO: not consulted again in this
		// session; refused: every transaction is refused.
		return nil, *d
	}
	mc.conn.timeout.Store(int64(orDefault(m.CommandTimeout, DefaultMilterCommandTimeout)))
	m.mailMacros(mc.macros, env)
	ms := &milterSession{m: m, mc: mc, s: mc.s, macros: mc.macros, conn: mc.conn, content: orDefault(m.ContentTimeout, DefaultMilterContentTimeout)}
	v, _ := ms.step(env, func() (*milter.Action, error) { return mc.s.Mail(env.From, "") })
	return ms, v
}

// Close implements mail.ConnFilter: QUIT to the milter.
func (mc *milterConn) Close() error {
	if mc.s == nil {
		return nil
	}
	err := mc.s.Close()
	mc.s = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// clientName is the {client_name} of Postfix: the verified name of the
// client, or "unknown".
func clientName(env *mail.Envelope) string {
	for _, r := range env.Results {
		if r.Method == "iprev" && r.Result == "pass" {
			if n := r.Props["policy.iprev"]; n != "" {
				return n
			}
		}
	}
	return "unknown"
}

// connectMacros fills the values of the connect stage's macros, a new
// bag for the connection.
func (m *Milter) connectMacros(env *mail.Envelope) *milter.MacroBag {
	b := milter.NewMacroBag()
	b.Set(milter.MacroMTAFQDN, env.Hostname)
	name := m.DaemonName
	if name == "" {
		name = "mailagent"
	}
	b.Set(milter.MacroDaemonName, name)
	b.Set(milter.MacroMTAVersion, "mailagent")
	if ta, ok := env.RemoteAddr.(*net.TCPAddr); ok {
		b.Set(milter.MacroClientAddr, ta.IP.String())
		b.Set(milter.MacroClientPort, strconv.Itoa(ta.Port))
		b.Set(milter.MacroClientName, clientName(env))
		b.Set(milter.MacroClientPTR, clientName(env))
		b.Set(milter.MacroRFC1413AuthInfo, clientName(env)+" ["+ta.IP.String()+"]")
	}
	return b
}

// tlsMacros sets the HELO stage's macros: the TLS state, none when the
// session is not encrypted.
func (m *Milter) tlsMacros(b *milter.MacroBag, env *mail.Envelope) {
	version, cipher, bits := "", "", ""
	if env.TLS != nil {
		version, cipher = tls.VersionName(env.TLS.Version), tls.CipherSuiteName(env.TLS.CipherSuite)
		bits = cipherBits(env.TLS.CipherSuite)
	}
	b.Set(milter.MacroTlsVersion, version)
	b.Set(milter.MacroCipher, cipher)
	b.Set(milter.MacroCipherBits, bits)
}

// cipherBits is the {cipher_bits} of a suite: its key size.
func cipherBits(suite uint16) string {
	name := tls.CipherSuiteName(suite)
	switch {
	case strings.Contains(name, "AES_128"):
		return "128"
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return "256"
	}
	return ""
}

// mailMacros sets the MAIL stage's macros for a new transaction and
// forgets the last transaction's recipient.
func (m *Milter) mailMacros(b *milter.MacroBag, env *mail.Envelope) {
	b.Set(milter.MacroQueueId, env.ID)
	authType, authAuthen := "", ""
	if env.AuthUser != "" {
		authType, authAuthen = env.AuthMechanism, env.AuthUser
		if authType == "" {
			authType = "PLAIN"
		}
	}
	b.Set(milter.MacroAuthType, authType)
	b.Set(milter.MacroAuthAuthen, authAuthen)
	b.Set(milter.MacroMailAddr, env.From)
	host := ""
	if i := strings.LastIndexByte(env.From, '@'); i >= 0 {
		host = env.From[i+1:]
	}
	b.Set(milter.MacroMailHost, host)
	b.Set(milter.MacroMailMailer, "smtp")
	b.Set(milter.MacroRcptAddr, "")
	b.Set(milter.MacroRcptHost, "")
}

// failed is the verdict when the milter could not be used.
func (m *Milter) failed(env *mail.Envelope, err error) mail.Verdict {
	m.log().Warn("milter unavailable", "id", env.ID, "milter", m.Address, "err", err, "action", m.Failure)
	switch m.Failure {
	case MilterAccept:
		return mail.Verdict{}
	case MilterReject:
		return mail.Verdict{Action: mail.Reject, Reply: errMilterReject}
	}
	return mail.Verdict{Action: mail.Reject, Reply: errMilterTempfail}
}

// milterSession is one transaction on the session's milter connection.
type milterSession struct {
	m      *Milter
	mc     *milterConn
	own    bool // the connection is this transaction's alone
	s      *milter.ClientSession
	macros *milter.MacroBag
	conn   *stageConn
	// content is the timeout of each part of the message.
	content time.Duration
	// done is set once the milter accepted the message, refused it or
	// failed: nothing more is sent.
	done bool
}

// step runs one command; ok is false when the transaction is decided.
func (ms *milterSession) step(env *mail.Envelope, cmd func() (*milter.Action, error)) (mail.Verdict, bool) {
	if ms.done {
		return mail.Verdict{}, false
	}
	act, err := cmd()
	if err != nil {
		return ms.fail(env, err), false
	}
	v, stop := actionVerdict(act)
	if stop {
		ms.done = true
	}
	return v, !stop
}

// actionVerdict turns a milter's reply into a verdict; stop reports a
// reply that decides the transaction.
func actionVerdict(act *milter.Action) (mail.Verdict, bool) {
	if act == nil {
		return mail.Verdict{}, false
	}
	switch act.Type {
	case milter.ActionAccept:
		return mail.Verdict{}, true
	case milter.ActionDiscard:
		return mail.Verdict{Action: mail.Discard, Reason: "milter discard"}, true
	case milter.ActionReject:
		return mail.Verdict{Action: mail.Reject, Reply: errMilterReject}, true
	case milter.ActionTempFail:
		return mail.Verdict{Action: mail.Reject, Reply: errMilterTempfail}, true
	case milter.ActionRejectWithCode:
		return mail.Verdict{Action: mail.Reject, Reply: parseMilterReply(act.SMTPCode, act.SMTPReply)}, true
	}
	return mail.Verdict{}, false
}

// parseMilterReply reads a milter's SMFIR_REPLYCODE text, "550 5.7.1
// text" with continuation lines "550-5.7.1 text", into a reply. A code
// outside 4xx and 5xx becomes the tempfail reply.
func parseMilterReply(code uint16, text string) *mail.Error {
	if code < 400 || code > 599 {
		return errMilterTempfail
	}
	e := &mail.Error{Code: int(code)}
	var lines []string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		// The text goes to the client: no control character in it.
		line = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, line)
		if len(line) >= 4 && line[:3] == strconv.Itoa(int(code)) && (line[3] == ' ' || line[3] == '-') {
			line = line[4:]
		} else if len(line) == 3 && line == strconv.Itoa(int(code)) {
			line = ""
		}
		if len(lines) == 0 {
			if ec, rest, ok := parseEnhanced(line); ok && ec[0] == int(code)/100 {
				e.EnhancedCode, line = ec, rest
			}
		} else if _, rest, ok := parseEnhanced(line); ok {
			line = rest
		}
		lines = append(lines, line)
	}
	if e.EnhancedCode == [3]int{} {
		e.EnhancedCode = [3]int{int(code) / 100, 7, 1}
	}
	e.Message = strings.Join(lines, "\n")
	return e
}

// parseEnhanced reads an enhanced status code "x.y.z " at the start of s.
func parseEnhanced(s string) ([3]int, string, bool) {
	var ec [3]int
	word, rest, _ := strings.Cut(s, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 {
		return ec, s, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || len(p) > 3 {
			return ec, s, false
		}
		ec[i] = n
	}
	return ec, rest, true
}

// Rcpt implements FilterSession.
func (ms *milterSession) Rcpt(ctx context.Context, env *mail.Envelope, rcpt string) mail.Verdict {
	ms.macros.Set(milter.MacroRcptAddr, rcpt)
	host := ""
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		host = rcpt[i+1:]
	}
	ms.macros.Set(milter.MacroRcptHost, host)
	ms.macros.Set(milter.MacroRcptMailer, "smtp")
	v, _ := ms.stepRcpt(env, rcpt)
	return v
}

// stepRcpt sends one RCPT. A refusal of one recipient leaves the
// transaction open for the others, as in Postfix.
func (ms *milterSession) stepRcpt(env *mail.Envelope, rcpt string) (mail.Verdict, bool) {
	if ms.done {
		return mail.Verdict{}, false
	}
	act, err := ms.s.Rcpt(rcpt, "")
	if err != nil {
		return ms.fail(env, err), false
	}
	v, stop := actionVerdict(act)
	if stop && act.Type != milter.ActionReject && act.Type != milter.ActionRejectWithCode && act.Type != milter.ActionTempFail {
		ms.done = true
	}
	return v, !stop
}

// Message implements FilterSession: the header fields, the body and
// end-of-message, and the milter's modifications as edits.
func (ms *milterSession) Message(ctx context.Context, env *mail.Envelope, msg mail.Body) mail.Verdict {
	if ms.done {
		return mail.Verdict{}
	}
	fail := func(err error) mail.Verdict { return ms.fail(env, err) }
	ms.macros.Set(milter.MacroQueueId, env.ID)
	if act, err := ms.s.DataStart(); err != nil {
		return fail(err)
	} else if v, stop := actionVerdict(act); stop {
		ms.done = true
		return v
	}
	if ms.conn != nil {
		// Header, body and end-of-message: milter_content_timeout.
		ms.conn.timeout.Store(int64(ms.content))
	}
	rc, err := msg.Open()
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	fields, _, err := splitHeader(br)
	if err != nil {
		return fail(err)
	}
	for _, f := range fields {
		if f.name == "" {
			continue
		}
		act, err := ms.s.HeaderField(f.name, fieldValue(f, ms.s.ProtocolOption(milter.OptHeaderLeadingSpace)), nil)
		if err != nil {
			return fail(err)
		}
		if v, stop := actionVerdict(act); stop {
			ms.done = true
			return v
		}
	}
	if act, err := ms.s.HeaderEnd(); err != nil {
		return fail(err)
	} else if v, stop := actionVerdict(act); stop {
		ms.done = true
		return v
	}
	mods, act, err := ms.s.BodyReadFrom(br)
	if err != nil {
		return fail(err)
	}
	ms.done = true
	v, _ := actionVerdict(act)
	if v.Action != mail.Accept {
		return v
	}
	for _, mod := range mods {
		switch mod.Type {
		case milter.ActionAddHeader:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.AddHeader, Name: mod.HeaderName, Value: mod.HeaderValue})
			spamHeader(&v, mod.HeaderName, mod.HeaderValue)
		case milter.ActionInsertHeader:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.InsertHeader, Name: mod.HeaderName, Value: mod.HeaderValue, Index: int(mod.HeaderIndex)})
			spamHeader(&v, mod.HeaderName, mod.HeaderValue)
		case milter.ActionChangeHeader:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.ChangeHeader, Name: mod.HeaderName, Value: mod.HeaderValue, Index: int(mod.HeaderIndex)})
			spamHeader(&v, mod.HeaderName, mod.HeaderValue)
		case milter.ActionReplaceBody:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.ReplaceBody, Body: mod.Body})
		case milter.ActionAddRcpt:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.AddRcpt, Addr: milter.RemoveAngle(mod.Rcpt)})
		case milter.ActionDelRcpt:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.DelRcpt, Addr: milter.RemoveAngle(mod.Rcpt)})
		case milter.ActionChangeFrom:
			v.Edits = append(v.Edits, mail.Edit{Kind: mail.ChangeFrom, Addr: milter.RemoveAngle(mod.From)})
		case milter.ActionQuarantine:
			v.Action, v.Reason = mail.Quarantine, mod.Reason
		}
	}
	ms.m.log().Info("milter verdict", "id", env.ID, "milter", ms.m.Address, "action", v.Action, "edits", len(v.Edits))
	return v
}

// spamHeader marks the verdict Junk when a milter flags the message
// with the fields SpamAssassin and rspamd add: X-Spam-Flag: YES or
// X-Spam: Yes.
func spamHeader(v *mail.Verdict, name, value string) {
	if v.Action != mail.Accept {
		return
	}
	if (strings.EqualFold(name, "X-Spam-Flag") || strings.EqualFold(name, "X-Spam")) &&
		strings.EqualFold(strings.TrimSpace(value), "yes") {
		v.Action, v.Reason = mail.Junk, name+": "+strings.TrimSpace(value)
	}
}

// fail ends the transaction after the milter failed: the connection is
// dropped (the next transaction connects again) and the default action
// applies.
func (ms *milterSession) fail(env *mail.Envelope, err error) mail.Verdict {
	ms.done = true
	ms.mc.drop()
	return ms.m.failed(env, err)
}

// Close implements FilterSession: it aborts the transaction on the
// milter so the connection is ready for the next MAIL, or ends the
// connection when it was this transaction's alone.
func (ms *milterSession) Close() error {
	if ms.own {
		return ms.mc.Close()
	}
	if ms.mc.s != ms.s {
		return nil // dropped after a failure
	}
	if err := ms.s.Abort(nil); err != nil {
		ms.mc.drop()
		return err
	}
	return nil
}

// String names a failure action as Postfix's milter_default_action does.
func (f MilterFailure) String() string {
	switch f {
	case MilterAccept:
		return "accept"
	case MilterReject:
		return "reject"
	}
	return "tempfail"
}
