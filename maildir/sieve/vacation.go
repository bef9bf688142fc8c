package sieve

import (
	"context"
	"strings"
	"time"
)

// VacationMemory remembers whom a vacation reply went to, so that a sender
// gets at most one per period for one handle (RFC 5230 section 4.2). The
// caller persists it.
type VacationMemory interface {
	// Replied reports whether a reply to sender under handle was recorded
	// after since.
	Replied(ctx context.Context, sender, handle string, since time.Time) (bool, error)
	// Record notes a reply to sender under handle at when.
	Record(ctx context.Context, sender, handle string, when time.Time) error
}

// ShouldReply decides whether the vacation action v answers msg, and
// records the reply in mem when it does. It never answers the null sender,
// mailing lists (List-Id and the other List- fields), bulk or junk mail
// (Precedence), automatic mail (Auto-Submitted other than "no"), owner-,
// -request and MAILER-DAEMON senders, nor mail whose To, Cc, Bcc and
// Resent- fields name none of the user's addresses (the envelope recipient
// and :addresses). why says why not.
func (v *Vacation) ShouldReply(ctx context.Context, msg *Message, env Envelope, mem VacationMemory, now time.Time) (ok bool, why string, err error) {
	sender := env.From
	if sender == "" {
		return false, "null sender", nil
	}
	local, _, _ := strings.Cut(sender, "@")
	l := lower(local)
	if l == "mailer-daemon" || strings.HasPrefix(l, "owner-") || strings.HasSuffix(l, "-request") {
		return false, "sender is a list or daemon address", nil
	}
	for _, f := range msg.Header {
		name := lower(f.Name)
		val := lower(unfold(f.Value))
		switch {
		case strings.HasPrefix(name, "list-"):
			return false, "mailing list", nil
		case name == "precedence" && (val == "bulk" || val == "list" || val == "junk"):
			return false, "precedence " + val, nil
		case name == "auto-submitted" && val != "no":
			return false, "auto-submitted", nil
		case name == "x-auto-response-suppress" && (strings.Contains(val, "all") || strings.Contains(val, "oof")):
			return false, "auto-responses suppressed", nil
		}
	}
	mine := append([]string{env.To, env.OrigTo}, v.Addresses...)
	if v.From != "" {
		if a := parseAddresses(v.From); len(a) == 1 {
			mine = append(mine, a[0].all)
		}
	}
	found := false
	for _, f := range msg.Header {
		switch lower(f.Name) {
		case "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc":
			for _, a := range parseAddresses(f.Value) {
				for _, m := range mine {
					if m != "" && strings.EqualFold(a.all, m) {
						found = true
					}
				}
			}
		}
	}
	if !found {
		return false, "not addressed to the user", nil
	}
	if mem != nil {
		seen, err := mem.Replied(ctx, lower(sender), v.Handle, now.Add(-v.Period))
		if err != nil {
			return false, "", err
		}
		if seen {
			return false, "already answered within the period", nil
		}
		if err := mem.Record(ctx, lower(sender), v.Handle, now); err != nil {
			return false, "", err
		}
	}
	return true, "", nil
}

// ReplySubject is the subject of the reply: :subject, or "Auto: " and the
// original subject (RFC 5230 section 5.3).
func (v *Vacation) ReplySubject(msg *Message) string {
	if v.Subject != "" {
		return v.Subject
	}
	var orig string
	if s := fieldValues(msg.Header, "subject"); len(s) > 0 {
		orig = decodeValue(s[0])
	}
	return "Auto: " + orig
}
