package outbound

import (
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailagent/mailagent/smtp/mail"
)

// mailOptions are MAIL's parameters for m: SIZE, SMTPUTF8, and RET and
// ENVID when the next hop offers DSN (go-smtp writes them only then).
func mailOptions(m *Message, size int64, utf8, dsn bool) *gosmtp.MailOptions {
	o := &gosmtp.MailOptions{Size: size, UTF8: utf8}
	if !dsn {
		return o
	}
	switch m.Ret {
	case "FULL":
		o.Return = gosmtp.DSNReturnFull
	case "HDRS":
		o.Return = gosmtp.DSNReturnHeaders
	}
	// go-smtp refuses the whole MAIL for an ENVID it cannot encode as
	// xtext: such a one is dropped, the message still goes.
	if printableASCII(m.EnvID) {
		o.EnvelopeID = m.EnvID
	}
	return o
}

// rcptOptions are RCPT's NOTIFY and ORCPT for recipient i of m, nil when
// the next hop does not offer DSN or none were given.
func rcptOptions(m *Message, i int, dsn bool) *gosmtp.RcptOptions {
	if !dsn || i >= len(m.DSN) {
		return nil
	}
	d := m.DSN[i]
	o := &gosmtp.RcptOptions{}
	switch {
	case d.Notify&mail.NotifyNever != 0:
		o.Notify = []gosmtp.DSNNotify{gosmtp.DSNNotifyNever}
	default:
		if d.Notify&mail.NotifySuccess != 0 {
			o.Notify = append(o.Notify, gosmtp.DSNNotifySuccess)
		}
		if d.Notify&mail.NotifyFailure != 0 {
			o.Notify = append(o.Notify, gosmtp.DSNNotifyFailure)
		}
		if d.Notify&mail.NotifyDelay != 0 {
			o.Notify = append(o.Notify, gosmtp.DSNNotifyDelayed)
		}
	}
	switch {
	case d.ORcpt == "":
	case d.ORcptType == "utf-8":
		o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeUTF8, d.ORcpt
	case printableASCII(d.ORcpt):
		o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeRFC822, d.ORcpt
	}
	return o
}

// printableASCII reports whether s is non-empty printable ASCII, what
// go-smtp can send as xtext.
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
