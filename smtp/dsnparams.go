package smtp

import (
	"strings"
	"unicode/utf8"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
)

// Bounds of RFC 3461 on the DSN parameters, applied to the decoded
// values (go-smtp decodes the xtext): ENVID at most 100 characters
// (section 4.4), ORCPT at most 500 (section 4.2).
const (
	maxEnvID = 100
	maxORcpt = 500
)

var errDSNParam = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 5, 4}, Message: "Malformed DSN parameter value"}

// rcptDSN returns RCPT's DSN parameters, or the reply refusing them: an
// original recipient longer than RFC 3461 allows, or holding a control
// character or invalid UTF-8, is refused, since it is written back into
// a notification.
func rcptDSN(opts *gosmtp.RcptOptions) (mail.RcptDSN, *mail.Error) {
	var d mail.RcptDSN
	if opts == nil {
		return d, nil
	}
	for _, n := range opts.Notify {
		switch n {
		case gosmtp.DSNNotifyNever:
			d.Notify |= mail.NotifyNever
		case gosmtp.DSNNotifySuccess:
			d.Notify |= mail.NotifySuccess
		case gosmtp.DSNNotifyFailure:
			d.Notify |= mail.NotifyFailure
		case gosmtp.DSNNotifyDelayed:
			d.Notify |= mail.NotifyDelay
		}
	}
	if a := opts.OriginalRecipient; a != "" {
		if len(a) > maxORcpt || !utf8.ValidString(a) || hasControl(a) {
			return d, errDSNParam
		}
		d.ORcptType, d.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)), a
	}
	return d, nil
}
