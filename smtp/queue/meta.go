package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
)

// State is where a recipient of a queued message stands.
type State string

const (
	// Queued recipients wait for their next attempt.
	Queued State = "queued"
	// Delivered recipients were accepted by their next hop.
	Delivered State = "delivered"
	// Failed recipients failed for good; the sender was notified.
	Failed State = "failed"
)

// metaVersion is the format of the metadata files written; older or newer
// ones are refused rather than guessed at.
const metaVersion = 1

// Limits on metadata, far above what any real message needs, so that a
// damaged file cannot make the queue allocate without bound.
const (
	maxMetaSize   = 1 << 20
	maxRecipients = 1000
	maxAddressLen = 1024
	maxReplyLen   = 2048
)

// meta is the metadata file of one message. It is rewritten whole after
// every delivery attempt.
type meta struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Txn is the ID of the SMTP transaction that queued the message
	// (its Received field's "id"), which every log line of the message
	// repeats so that one search finds its whole life.
	Txn         string    `json:"txn,omitempty"`
	From        string    `json:"from"`
	Arrived     time.Time `json:"arrived"`
	NextAttempt time.Time `json:"next_attempt"`
	Attempts    int       `json:"attempts"`
	Held        bool      `json:"held,omitempty"`
	Warned      bool      `json:"warned,omitempty"`
	SMTPUTF8    bool      `json:"smtputf8,omitempty"`
	Size        int64     `json:"size"`
	AuthUser    string    `json:"auth_user,omitempty"`
	// Ret and EnvID are MAIL's RET and ENVID (RFC 3461); absent from
	// files written before DSN was offered, which read as RET=HDRS.
	Ret        string      `json:"ret,omitempty"`
	EnvID      string      `json:"envid,omitempty"`
	Recipients []rcptState `json:"recipients"`
}

// rcptState is one recipient's progress.
type rcptState struct {
	Addr string `json:"addr"`
	// Hop is the next hop fixed when the message was queued through
	// Via; empty to route at each attempt.
	Hop      string    `json:"hop,omitempty"`
	State    State     `json:"state"`
	Code     int       `json:"code,omitempty"`
	Enhanced [3]int    `json:"enhanced,omitzero"`
	Reply    string    `json:"reply,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Last     time.Time `json:"last,omitzero"`
	// History is the recipient's attempts, oldest first, at most
	// maxHistory of them (the oldest dropped first).
	History []attempt `json:"history,omitempty"`
	// Notify is RCPT's NOTIFY (zero when not given: failures and
	// delays are notified); ORcpt its ORCPT, "type;decoded address".
	// Both are absent from files written before DSN was offered.
	Notify mail.Notify `json:"notify,omitempty"`
	ORcpt  string      `json:"orcpt,omitempty"`
}

// attempt is one delivery attempt for one recipient.
type attempt struct {
	At       time.Time `json:"at"`
	Remote   string    `json:"remote,omitempty"`
	TLS      string    `json:"tls,omitempty"`
	Code     int       `json:"code"`
	Enhanced [3]int    `json:"enhanced,omitzero"`
	Reply    string    `json:"reply,omitempty"`
}

// maxHistory bounds the attempts kept per recipient, and
// maxHistoryReply each one's reply text: the metadata file stays small
// (and under maxMetaSize, which encodeMeta enforces by dropping history).
const (
	maxHistory      = 10
	maxHistoryReply = 300
)

// record appends a to r's history, dropping the oldest beyond maxHistory.
func (r *rcptState) record(a attempt) {
	if len(a.Reply) > maxHistoryReply {
		a.Reply = a.Reply[:maxHistoryReply]
	}
	r.History = append(r.History, a)
	if n := len(r.History) - maxHistory; n > 0 {
		r.History = append(r.History[:0], r.History[n:]...)
	}
}

// errCorrupt reports a metadata file that cannot be trusted.
var errCorrupt = errors.New("queue: corrupt metadata")

func encodeMeta(m *meta) ([]byte, error) {
	m.Version = metaVersion
	if err := m.validate(); err != nil {
		return nil, err
	}
	for {
		b, err := json.Marshal(m)
		if err != nil || len(b) <= maxMetaSize {
			return b, err
		}
		// Too big to be read back: the history goes first, oldest
		// attempts before newer ones.
		trimmed := false
		for i := range m.Recipients {
			if h := m.Recipients[i].History; len(h) > 0 {
				m.Recipients[i].History = h[(len(h)+1)/2:]
				trimmed = true
			}
		}
		if !trimmed {
			return b, nil
		}
	}
}

// decodeMeta parses and validates a metadata file.
func decodeMeta(b []byte) (*meta, error) {
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes", errCorrupt, len(b))
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if m.Version != metaVersion {
		return nil, fmt.Errorf("%w: version %d", errCorrupt, m.Version)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *meta) validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", errCorrupt, what) }
	if !validID(m.ID) {
		return bad("id")
	}
	if !validAddr(m.From, true) {
		return bad("from")
	}
	if len(m.Recipients) == 0 || len(m.Recipients) > maxRecipients {
		return bad("recipient count")
	}
	if m.Attempts < 0 || m.Size < 0 || len(m.AuthUser) > maxAddressLen {
		return bad("counters")
	}
	switch m.Ret {
	case "", "FULL", "HDRS":
	default:
		return bad("ret")
	}
	if !validText(m.EnvID, maxAddressLen) {
		return bad("envid")
	}
	for _, r := range m.Recipients {
		if !validAddr(r.Addr, false) {
			return bad("recipient")
		}
		if r.Hop != "" {
			if _, err := outbound.ParseNextHop(r.Hop); err != nil {
				return bad("next hop")
			}
		}
		switch r.State {
		case Queued, Delivered, Failed:
		default:
			return bad("state")
		}
		if !validText(r.ORcpt, maxAddressLen) || r.Notify > mail.NotifyNever|mail.NotifySuccess|mail.NotifyFailure|mail.NotifyDelay {
			return bad("dsn parameters")
		}
		if r.Code < 0 || r.Code > 599 || len(r.Reply) > maxReplyLen || len(r.Remote) > maxAddressLen {
			return bad("reply")
		}
		if len(r.History) > maxHistory {
			return bad("history")
		}
		for _, a := range r.History {
			if a.Code < 0 || a.Code > 599 || len(a.Reply) > maxHistoryReply || len(a.Remote) > maxAddressLen || len(a.TLS) > 16 {
				return bad("history")
			}
		}
		for _, n := range r.Enhanced {
			if n < 0 || n > 999 {
				return bad("enhanced code")
			}
		}
	}
	return nil
}

// validAddr accepts what may appear in an SMTP path: no controls, no
// angle brackets, bounded length; the empty reverse path when nullOK.
func validAddr(a string, nullOK bool) bool {
	if a == "" {
		return nullOK
	}
	if len(a) > maxAddressLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 0x21 || c == 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// validText accepts bounded UTF-8 without control characters: what a
// notification may write back into a field.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return false
		}
	}
	return true
}

// domainOf returns the lower-cased domain of an address.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// pending returns the indexes of recipients still queued.
func (m *meta) pending() []int {
	var idx []int
	for i, r := range m.Recipients {
		if r.State == Queued {
			idx = append(idx, i)
		}
	}
	return idx
}

// rcptDSN is the recipient's NOTIFY and ORCPT as a next hop is given
// them.
func (r *rcptState) rcptDSN() mail.RcptDSN {
	d := mail.RcptDSN{Notify: r.Notify}
	if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok {
		d.ORcptType, d.ORcpt = strings.ToLower(typ), addr
	}
	return d
}
