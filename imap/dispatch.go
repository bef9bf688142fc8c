package imap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/readclock"
)

// okStatus is a command's tagged OK: an optional response code and
// text (default "<command> completed").
type okStatus struct {
	code, text string
}

// handler serves one command in the states it is allowed in.
type handler struct {
	states connState
	fn     func(c *conn, cmd *imapwire.Command) (okStatus, error)
	// noExpunge: untagged EXPUNGE may not be sent while answering it
	// (RFC 9051 section 7.5.1: FETCH, STORE, SEARCH without UID).
	noExpunge bool
}

const (
	anyState   = stateNotAuth | stateAuth | stateSelected
	authed     = stateAuth | stateSelected
	inSelected = stateSelected
)

// handlers is the command table; filled in init to break the cycle
// through answer.
var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"CAPABILITY":   {states: anyState, fn: (*conn).cmdCapability},
		"NOOP":         {states: anyState, fn: (*conn).cmdNoop},
		"LOGOUT":       {states: anyState, fn: (*conn).cmdLogout},
		"ID":           {states: anyState, fn: (*conn).cmdID},
		"STARTTLS":     {states: stateNotAuth, fn: (*conn).cmdStartTLS},
		"LOGIN":        {states: stateNotAuth, fn: (*conn).cmdLogin},
		"AUTHENTICATE": {states: stateNotAuth, fn: (*conn).cmdAuthenticate},
		"ENABLE":       {states: authed, fn: (*conn).cmdEnable},
		"SELECT":       {states: authed, fn: (*conn).cmdSelect},
		"EXAMINE":      {states: authed, fn: (*conn).cmdSelect},
		"CREATE":       {states: authed, fn: (*conn).cmdCreate},
		"DELETE":       {states: authed, fn: (*conn).cmdDelete},
		"RENAME":       {states: authed, fn: (*conn).cmdRename},
		"SUBSCRIBE":    {states: authed, fn: (*conn).cmdSubscribe},
		"UNSUBSCRIBE":  {states: authed, fn: (*conn).cmdSubscribe},
		"LIST":         {states: authed, fn: (*conn).cmdList},
		"LSUB":         {states: authed, fn: (*conn).cmdList},
		"NAMESPACE":    {states: authed, fn: (*conn).cmdNamespace},
		"STATUS":       {states: authed, fn: (*conn).cmdStatus},
		"APPEND":       {states: authed, fn: (*conn).cmdAppend},
		"IDLE":         {states: authed, fn: (*conn).cmdIdle},
		"COMPRESS":     {states: authed, fn: (*conn).cmdCompress},
		"GETQUOTAROOT": {states: authed, fn: (*conn).cmdGetQuotaRoot},
		"NOTIFY":       {states: authed, fn: (*conn).cmdNotify},
		"CANCELUPDATE": {states: inSelected, fn: (*conn).cmdCancelUpdate},
		"GETQUOTA":     {states: authed, fn: (*conn).cmdGetQuota},
		"SETQUOTA":     {states: authed, fn: (*conn).cmdSetQuota},
		"CHECK":        {states: inSelected, fn: (*conn).cmdNoop},
		"CLOSE":        {states: inSelected, fn: (*conn).cmdClose},
		"UNSELECT":     {states: inSelected, fn: (*conn).cmdClose},
		"EXPUNGE":      {states: inSelected, fn: (*conn).cmdExpunge},
		"SEARCH":       {states: inSelected, fn: (*conn).cmdSearch, noExpunge: true},
		"SORT":         {states: inSelected, fn: (*conn).cmdSort, noExpunge: true},
		"THREAD":       {states: inSelected, fn: (*conn).cmdThread, noExpunge: true},
		"FETCH":        {states: inSelected, fn: (*conn).cmdFetch, noExpunge: true},
		"STORE":        {states: inSelected, fn: (*conn).cmdStore, noExpunge: true},
		"COPY":         {states: inSelected, fn: (*conn).cmdCopy},
		"MOVE":         {states: inSelected, fn: (*conn).cmdMove},
		"REPLACE":      {states: inSelected, fn: (*conn).cmdReplace},
	}
}

// answer runs cmd and writes its responses: its own, then the selected
// mailbox's news where the RFC allows them, then the tagged status.
func (c *conn) answer(cmd *imapwire.Command) {
	h, ok := handlers[cmd.Name]
	if !ok {
		c.w.Status(cmd.Tag, imap.StatusResponseTypeBad, "", "Unknown command")
		return
	}
	if h.states&c.state == 0 {
		text := notAllowedText(c.state, h.states)
		if _, ok := cmd.Args.(*imapwire.Append); ok {
			// Its messages are read (and dropped) first: what follows
			// them is the next command.
			if err := c.endAppend(nil); err != nil {
				if !errors.Is(err, errSilent) {
					c.writeError(cmd, err)
				}
				return
			}
		}
		c.w.Status(cmd.Tag, imap.StatusResponseTypeBad, "", text)
		return
	}
	if c.uidOnly {
		if err := uidRequired(cmd); err != nil {
			if _, ok := cmd.Args.(*imapwire.Append); ok {
				err = c.endAppend(err)
			}
			if !errors.Is(err, errSilent) {
				c.writeError(cmd, err)
			}
			return
		}
	}
	if c.sess != nil {
		if err := c.srv.namespace().mapNames(cmd); err != nil {
			if _, ok := cmd.Args.(*imapwire.Append); ok {
				err = c.endAppend(err)
			}
			if !errors.Is(err, errSilent) {
				c.writeError(cmd, err)
			}
			return
		}
	}
	defer c.sess.changeLock(cmd)()
	status, err := h.fn(c, cmd)
	// A continuation request (a later literal of APPEND) flushed and
	// gave back the response buffer.
	c.startWrite()
	if errors.Is(err, errAnswered) || errors.Is(err, errSilent) || c.expiredCause() != readclock.None {
		return // answered, or the connection ends with a BYE
	}
	if c.state == stateSelected && c.sess != nil && c.sess.sel != nil {
		allowExpunge := !h.noExpunge || cmd.UID
		c.sess.sel.ctxDirty = c.sess.sel.ctxDirty || changesMailbox[cmd.Name]
		if perr := c.sess.pollNotify(c.w, allowExpunge); perr != nil && err == nil {
			err = perr
		}
	}
	if c.sess != nil {
		c.sess.pushNotify(c.w)
	}
	if err != nil {
		c.writeError(cmd, err)
		return
	}
	c.sess.mailboxChanged(cmd) // NOTIFY's MailboxName, SubscriptionChange
	text := status.text
	if text == "" {
		text = cmd.Name + " completed"
		if cmd.UID {
			text = "UID " + text
		}
	}
	c.w.Status(cmd.Tag, imap.StatusResponseTypeOK, status.code, text)
}

// notAllowedText says why a command allowed in states is refused in
// state.
func notAllowedText(state, states connState) string {
	switch {
	case state == stateNotAuth:
		return "Log in first"
	case states == inSelected:
		return "No mailbox selected"
	case states == stateNotAuth:
		return "Already logged in"
	}
	return "Command not allowed now"
}

// checkCommand is the parser's Check: it refuses, as soon as its name
// is read, a command the connection's state does not allow, and LOGIN
// where passwords may not be sent, so that no continuation request
// invites the literals of a command refused anyway (a password in clear
// before TLS, data before login). Unknown commands are the parser's.
func (c *conn) checkCommand(name string, uid bool) *imapwire.Error {
	h, ok := handlers[name]
	switch {
	case !ok:
		return nil
	case h.states&c.state == 0:
		return &imapwire.Error{Type: imap.StatusResponseTypeBad, Text: notAllowedText(c.state, h.states)}
	case name == "LOGIN" && !c.authAllowed():
		return &imapwire.Error{Type: errPrivacy.Type, Code: errPrivacy.Code, Text: errPrivacy.Text}
	}
	return nil
}

// writeError answers a failed command: an *imap.Error as it says, any
// other error logged with the session ID and answered without its text.
func (c *conn) writeError(cmd *imapwire.Command, err error) {
	var ie *imap.Error
	if errors.As(err, &ie) {
		c.w.Status(cmd.Tag, ie.Type, string(ie.Code), ie.Text)
		return
	}
	user := ""
	if c.sess != nil && c.sess.user != nil {
		user = c.sess.user.Address
	}
	c.srv.log.Error("imap: command failed", "session", c.id, "user", user, "command", cmd.Name, "err", err)
	c.w.Status(cmd.Tag, imap.StatusResponseTypeNo, string(imap.ResponseCodeServerBug), "Internal error, try again later")
}

// capabilities lists what the connection offers in its state.
func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"}
	canTLS := c.srv.opts.TLSConfig != nil && !c.isTLS
	if c.state == stateNotAuth {
		if canTLS {
			caps = append(caps, "STARTTLS")
		}
		if c.authAllowed() {
			for _, m := range c.srv.opts.Authenticator.Mechanisms() {
				caps = append(caps, "AUTH="+m)
			}
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
		return strings.Join(caps, " ")
	}
	caps = append(caps, "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN",
		"LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "I18NLEVEL=1", "ESEARCH", "SEARCHRES", "WITHIN", "SAVEDATE",
		"BINARY", "STATUS=SIZE", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC", "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "MULTIAPPEND", "CATENATE", "URL-PARTIAL", "REPLACE", "UIDONLY", "OBJECTID", "SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "THREAD=REFS",
		"PREVIEW", "PREVIEW=FUZZY", "SNIPPET=FUZZY", "NOTIFY", "CONTEXT=SEARCH", "CONTEXT=SORT",
		fmt.Sprintf("APPENDLIMIT=%d", c.srv.opts.AppendLimit))
	if !c.compressed {
		// RFC 4978 section 3: authenticated state only, and not once
		// compression is on.
		caps = append(caps, "COMPRESS=DEFLATE")
	}
	return strings.Join(caps, " ")
}

// authAllowed reports whether passwords may be sent now.
func (c *conn) authAllowed() bool {
	return c.isTLS || c.srv.opts.AllowInsecureAuth
}

func (c *conn) cmdCapability(cmd *imapwire.Command) (okStatus, error) {
	c.w.Untagged()
	c.w.Atom("CAPABILITY " + c.capabilities())
	c.w.End()
	return okStatus{}, nil
}

// cmdNoop serves NOOP and CHECK: in the selected state the mailbox's
// news, other processes' changes included, follows.
func (c *conn) cmdNoop(cmd *imapwire.Command) (okStatus, error) {
	if s := c.sess; c.state == stateSelected && s != nil && s.sel != nil {
		s.sel.mb.catchUp(s.ctx, s.sel.folder)
	}
	return okStatus{}, nil
}

func (c *conn) cmdLogout(cmd *imapwire.Command) (okStatus, error) {
	c.w.Status("", imap.StatusResponseTypeBye, "", "Logging out")
	c.state = stateLogout
	return okStatus{}, nil
}

// cmdID answers ID (RFC 2971) with the server's name; what the client
// says of itself is logged.
func (c *conn) cmdID(cmd *imapwire.Command) (okStatus, error) {
	id := cmd.Args.(*imapwire.ID)
	if len(id.Params) > 0 {
		attrs := make([]any, 0, 2+2*len(id.Params))
		attrs = append(attrs, "session", c.id)
		for _, p := range id.Params {
			attrs = append(attrs, "id_"+strings.ToLower(p[0]), p[1])
		}
		c.srv.log.Info("imap: client ID", attrs...)
	}
	c.w.Untagged()
	c.w.Atom(`ID ("name" "mailagent")`)
	c.w.End()
	return okStatus{}, nil
}

func (c *conn) cmdStartTLS(cmd *imapwire.Command) (okStatus, error) {
	if c.srv.opts.TLSConfig == nil || c.isTLS {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "STARTTLS not available"}
	}
	c.w.Status(cmd.Tag, imap.StatusResponseTypeOK, "", "Begin TLS negotiation now")
	if err := c.startTLS(); err != nil {
		c.srv.log.Debug("imap: STARTTLS handshake", "session", c.id, "err", err)
		c.state = stateLogout
		c.bye = ""
		return okStatus{}, errSilent
	}
	return okStatus{}, errAnswered
}

// errAnswered and errSilent stop answer from writing a tagged status:
// the handler wrote it, or the connection is gone.
var (
	errAnswered = errors.New("answered")
	errSilent   = errors.New("connection ended")
)

// cmdEnable serves ENABLE (RFC 5161): IMAP4rev2 and UTF8=ACCEPT.
func (c *conn) cmdEnable(cmd *imapwire.Command) (okStatus, error) {
	var on []string
	for _, capName := range cmd.Args.(*imapwire.Enable).Caps {
		switch capName {
		case "IMAP4REV2":
			if !c.rev2 {
				c.rev2 = true
				on = append(on, "IMAP4rev2")
			}
			c.utf8 = true
		case "CONDSTORE":
			if !c.condstore {
				c.enableCondStore()
				on = append(on, "CONDSTORE")
			}
		case "QRESYNC":
			// QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3).
			if !c.qresync {
				c.qresync = true
				c.enableCondStore()
				on = append(on, "QRESYNC")
			}
		case "UIDONLY":
			if !c.uidOnly {
				c.uidOnly = true
				on = append(on, "UIDONLY")
			}
		case "UTF8=ACCEPT":
			if !c.utf8Accept {
				c.utf8Accept = true
				on = append(on, "UTF8=ACCEPT")
			}
			c.utf8 = true
		}
	}
	c.r.UTF8, c.w.UTF8 = c.utf8, c.utf8
	c.w.Untagged()
	c.w.Atom("ENABLED")
	for _, s := range on {
		c.w.SP()
		c.w.Atom(s)
	}
	c.w.End()
	return okStatus{}, nil
}

// enableCondStore turns CONDSTORE on (RFC 7162 section 3.1): from now
// on FETCH responses carry UID and MODSEQ, and a client that enables it
// with a mailbox selected is told the mailbox's HIGHESTMODSEQ.
func (c *conn) enableCondStore() {
	if c.condstore {
		return
	}
	c.condstore = true
	if c.sess == nil || c.sess.sel == nil {
		return
	}
	if st, err := c.sess.sel.folder.Status(c.srv.ctx); err == nil {
		c.w.Status("", imap.StatusResponseTypeOK, "HIGHESTMODSEQ "+itoa(st.HighestModSeq), "Highest")
	}
}
