package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
)

// errDiscarded tells Data that a filter discarded the message: the
// client is told it was accepted and nothing is delivered.
var errDiscarded = errors.New("smtp: message discarded by filter")

// connectFilters starts the session of every filter that follows whole
// sessions (a milter's connection, connect and HELO), when the client
// introduces itself.
func (ss *session) connectFilters() {
	for i, f := range ss.srv.opts.Checks.Filters {
		sf, ok := f.(mail.SessionFilter)
		if !ok {
			continue
		}
		if ss.conns == nil {
			ss.conns = make([]mail.ConnFilter, len(ss.srv.opts.Checks.Filters))
		}
		env := ss.base
		ss.conns[i] = sf.Connect(ss.ctx, &env)
	}
}

// disconnectFilters ends the filters' sessions.
func (ss *session) disconnectFilters() {
	for _, cf := range ss.conns {
		if cf == nil {
			continue
		}
		if err := cf.Close(); err != nil {
			ss.log.Debug("filter session close", "err", err)
		}
	}
	ss.conns = nil
}

// openFilters opens every filter of the server for env, at MAIL FROM.
// On a refusal the sessions already open are closed.
func (ss *session) openFilters(env *mail.Envelope) error {
	for i, f := range ss.srv.opts.Checks.Filters {
		var fs mail.FilterSession
		var v mail.Verdict
		if i < len(ss.conns) && ss.conns[i] != nil {
			fs, v = ss.conns[i].Open(ss.ctx, env)
		} else {
			fs, v = f.Open(ss.ctx, env)
		}
		var extra []string
		err := applyVerdict(v, env, &extra)
		if fs != nil {
			ss.filters = append(ss.filters, fs)
		}
		if err != nil {
			ss.log.Info("sender refused by filter", "id", env.ID, "from", env.From, "err", err)
			ss.closeFilters()
			return err
		}
	}
	return nil
}

// rcptFilters asks every filter about one recipient.
func (ss *session) rcptFilters(rcpt string) error {
	for _, fs := range ss.filters {
		var extra []string
		if err := applyVerdict(fs.Rcpt(ss.ctx, ss.env, rcpt), ss.env, &extra); err != nil {
			ss.log.Info("recipient refused by filter", "id", ss.env.ID, "rcpt", rcpt, "err", err)
			return err
		}
	}
	return nil
}

// closeFilters ends the transaction's filter sessions.
func (ss *session) closeFilters() {
	for _, fs := range ss.filters {
		if err := fs.Close(); err != nil {
			ss.log.Debug("filter close", "err", err)
		}
	}
	ss.filters = nil
	for _, sp := range ss.tmp {
		sp.Close()
	}
	ss.tmp = nil
}

// runFilters passes msg through the filters in order at the end of
// DATA and returns the message as they left it. Envelope edits restart
// the delivery with the changed sender and recipients.
func (ss *session) runFilters(msg mail.Body) (mail.Body, error) {
	env := ss.env
	envChanged, quarantined := false, false
	for _, fs := range ss.filters {
		v := fs.Message(ss.ctx, env, msg)
		switch v.Action {
		case mail.Reject:
			ss.log.Info("message refused by filter", "id", env.ID, "reply", v.Reply)
			if v.Reply != nil {
				return nil, v.Reply
			}
			return nil, defaultReject
		case mail.Discard:
			ss.log.Info("message discarded by filter", "id", env.ID, "reason", v.Reason)
			return nil, errDiscarded
		case mail.Junk:
			ss.log.Info("message judged spam by filter", "id", env.ID, "reason", v.Reason)
		case mail.Quarantine:
			ss.log.Info("message quarantined by filter", "id", env.ID, "reason", v.Reason)
			quarantined = true
		}
		var extra []string
		_ = applyVerdict(v, env, &extra)
		msg = headerenc.Prepend(msg, extra...)
		if len(v.Edits) == 0 {
			continue
		}
		var content []mail.Edit
		for _, e := range v.Edits {
			switch e.Kind {
			case mail.AddRcpt:
				if !slices.Contains(env.Recipients, e.Addr) {
					env.Recipients = append(env.Recipients, e.Addr)
					envChanged = true
				}
			case mail.DelRcpt:
				if i := slices.Index(env.Recipients, e.Addr); i >= 0 {
					env.Recipients = slices.Delete(env.Recipients, i, i+1)
					envChanged = true
				}
			case mail.ChangeFrom:
				env.From, envChanged = e.Addr, true
			default:
				content = append(content, e)
			}
		}
		if len(content) > 0 {
			sp := newSpool(ss.srv.opts.SpoolDir)
			ss.tmp = append(ss.tmp, sp)
			if err := editMessage(sp, msg, content); err != nil {
				if errors.Is(err, dnsauth.ErrHeaderTooLong) {
					return nil, errHeaderTooLong
				}
				return nil, ss.reply(err)
			}
			msg = sp
		}
	}
	if envChanged || (quarantined && ss.srv.opts.Quarantine != nil) {
		target := ss.srv.opts.Target
		if quarantined && ss.srv.opts.Quarantine != nil {
			target = ss.srv.opts.Quarantine
		}
		if err := ss.restartDelivery(target); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// restartDelivery replaces the delivery in progress with one into
// target for the envelope as the filters left it. A recipient a filter
// added that the target refuses is logged and dropped, as a milter has
// no one to tell. Over LMTP the client still gets one status per
// recipient it gave (RFC 2033 section 4.2): a recipient a filter
// removed gets 250, as a discarded message does, and one it added none
// (LMTPData).
func (ss *session) restartDelivery(target mail.Target) error {
	env := ss.env
	if ss.d != nil {
		_ = ss.d.Abort(context.WithoutCancel(ss.ctx))
		ss.d = nil
	}
	d, err := target.Start(ss.ctx, env)
	if err != nil {
		return ss.reply(err)
	}
	ss.d = d
	kept := env.Recipients[:0]
	for _, r := range env.Recipients {
		if err := d.AddRecipient(ss.ctx, r); err != nil {
			ss.log.Warn("recipient from filter refused", "id", env.ID, "rcpt", r, "err", err)
			continue
		}
		kept = append(kept, r)
	}
	env.Recipients = kept
	if len(kept) == 0 {
		ss.log.Info("filters removed every recipient", "id", env.ID)
		return errDiscarded
	}
	return nil
}

// headerField is one field of a header section as it is on the wire,
// with its folds and final CRLF.
type headerField struct {
	name string
	raw  []byte
}

// maxEditHeader bounds the header section an edit reads into memory.
const maxEditHeader = dnsauth.MaxHeaderBytes

// splitHeader reads the header section from r into fields, up to and
// including the empty line that ends it (reported in sep, empty when the
// message has no body). A line before the first field that is a
// continuation is kept as a field with no name.
func splitHeader(r *bufio.Reader) (fields []headerField, sep []byte, err error) {
	total := 0
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, nil, dnsauth.ErrHeaderTooLong
		}
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return fields, nil, nil
			}
			return nil, nil, err
		}
		total += len(line)
		if total > maxEditHeader {
			return nil, nil, dnsauth.ErrHeaderTooLong
		}
		if bytes.Equal(bytes.TrimRight(line, "\r\n"), nil) {
			return fields, append([]byte(nil), line...), nil
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.raw = append(f.raw, line...)
		} else {
			name := ""
			if i := bytes.IndexByte(line, ':'); i > 0 {
				name = strings.TrimRight(string(line[:i]), " \t")
			}
			fields = append(fields, headerField{name: name, raw: append([]byte(nil), line...)})
		}
		if err != nil {
			if err == io.EOF {
				return fields, nil, nil
			}
			return nil, nil, err
		}
	}
}

// formatField writes name: value as a field with CRLF line endings,
// keeping the value's folds.
func formatField(name, value string) []byte {
	value = strings.ReplaceAll(value, "\r\n", "\n")
	value = strings.ReplaceAll(value, "\r", "")
	value = strings.TrimRight(value, "\n")
	var b bytes.Buffer
	b.WriteString(name)
	b.WriteByte(':')
	if value != "" && value[0] != ' ' && value[0] != '\t' {
		b.WriteByte(' ')
	}
	for i, line := range strings.Split(value, "\n") {
		if i > 0 {
			b.WriteString("\r\n")
			if line == "" || (line[0] != ' ' && line[0] != '\t') {
				// A line that is not a fold would start a new field.
				b.WriteByte('\t')
			}
		}
		b.WriteString(line)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// fieldValue is a field's value as a milter receives it: after the
// colon, folds as LF, no final line break. Without leadSpace the one
// space after the colon is left out, as Postfix does for a milter that
// has not asked for the value as is (SMFIP_HDR_LEADSPC); a milter that
// has (OpenDKIM, for simple canonicalization) gets every byte.
func fieldValue(f headerField, leadSpace bool) string {
	v := f.raw
	if i := bytes.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if !leadSpace && len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	s := strings.ReplaceAll(string(v), "\r\n", "\n")
	return strings.TrimRight(s, "\n")
}

// editMessage writes msg with the header and body edits applied to w.
func editMessage(w io.Writer, msg mail.Body, edits []mail.Edit) error {
	rc, err := msg.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	fields, sep, err := splitHeader(br)
	if err != nil {
		return err
	}
	if n := len(fields); n > 0 && !bytes.HasSuffix(fields[n-1].raw, []byte("\n")) {
		fields[n-1].raw = append(fields[n-1].raw, "\r\n"...)
	}
	var body []byte
	replaced := false
	for _, e := range edits {
		switch e.Kind {
		case mail.AddHeader:
			fields = append(fields, headerField{name: e.Name, raw: formatField(e.Name, e.Value)})
		case mail.InsertHeader:
			i := min(max(e.Index, 0), len(fields))
			fields = slices.Insert(fields, i, headerField{name: e.Name, raw: formatField(e.Name, e.Value)})
		case mail.ChangeHeader:
			n, found := 0, false
			for i := range fields {
				if !strings.EqualFold(fields[i].name, e.Name) {
					continue
				}
				if n++; n != e.Index {
					continue
				}
				if e.Value == "" {
					fields = slices.Delete(fields, i, i+1)
				} else {
					fields[i] = headerField{name: fields[i].name, raw: formatField(fields[i].name, e.Value)}
				}
				found = true
				break
			}
			if !found && e.Value != "" {
				// As in Sendmail and Postfix: changing a field that is
				// not there adds it.
				fields = append(fields, headerField{name: e.Name, raw: formatField(e.Name, e.Value)})
			}
		case mail.ReplaceBody:
			if !replaced {
				body, replaced = nil, true
			}
			body = append(body, e.Body...)
		}
	}
	bw := bufio.NewWriter(w)
	for _, f := range fields {
		bw.Write(f.raw)
	}
	if sep == nil && (replaced || len(fields) > 0) {
		sep = []byte("\r\n")
	}
	bw.Write(sep)
	if replaced {
		bw.Write(body)
	} else if _, err := io.Copy(bw, br); err != nil {
		return err
	}
	return bw.Flush()
}
