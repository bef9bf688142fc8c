package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"strings"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

var (
	errHeaderNotOwner = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 7, 1},
		Message: "From or Sender address not owned by authenticated user"}
	errHeaderSenderSyntax = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 7, 1},
		Message: "From or Sender field cannot be read"}
)

// grants are the addresses Options.SendAs adds to what each user may
// send as, by store.Address key.
type grants struct {
	addrs   map[string]map[string]bool // user → granted addresses
	domains map[string]map[string]bool // user → granted whole domains
}

// newGrants checks and indexes Options.SendAs.
func newGrants(sendAs map[string][]string) (*grants, error) {
	g := &grants{addrs: map[string]map[string]bool{}, domains: map[string]map[string]bool{}}
	for user, list := range sendAs {
		u, err := store.ParseAddress(user)
		if err != nil {
			return nil, fmt.Errorf("smtp: SendAs: %w", err)
		}
		k := u.Key()
		if g.addrs[k] == nil {
			g.addrs[k], g.domains[k] = map[string]bool{}, map[string]bool{}
		}
		for _, a := range list {
			if d, ok := strings.CutPrefix(a, "@"); ok {
				// A domain: parsed as an address of it, so it is
				// normalised (IDNA, case) the same way.
				p, err := store.ParseAddress("x@" + d)
				if err != nil {
					return nil, fmt.Errorf("smtp: SendAs[%s]: %w", user, err)
				}
				g.domains[k][p.Domain] = true
				continue
			}
			p, err := store.ParseAddress(a)
			if err != nil {
				return nil, fmt.Errorf("smtp: SendAs[%s]: %w", user, err)
			}
			g.addrs[k][p.Key()] = true
		}
	}
	return g, nil
}

// granted reports whether the admin granted user the address a.
func (g *grants) granted(user, a store.Address) bool {
	if g == nil {
		return false
	}
	k := user.Key()
	return g.addrs[k][a.Key()] || g.domains[k][a.Domain]
}

// mayUse is the one rule for the addresses a submitting user sends as,
// in MAIL FROM and in the From and Sender fields alike: the user's own
// address, an address whose forwarding delivers to the user's mailbox
// (subaddresses included), or one Options.SendAs grants. It returns nil,
// errNotOwner, or a temporary failure when the directory cannot say.
func (ss *session) mayUse(addr string) error {
	err := owns(ss.ctx, ss.srv.opts.Directory, ss.srv.opts.Resolve, ss.srv.sendAs, ss.user.Address, addr)
	if err != nil && err != errNotOwner {
		return ss.reply(fmt.Errorf("sender lookup for %q: %w", addr, err))
	}
	return err
}

// owns applies mayUse's rule: nil, errNotOwner, or the directory's
// failure.
func owns(ctx context.Context, dir store.Directory, resolve store.ResolveOptions, g *grants, user, addr string) error {
	a, err := store.ParseAddress(addr)
	if err != nil {
		return errNotOwner
	}
	u, err := store.ParseAddress(user)
	if err != nil {
		return errNotOwner
	}
	if a.Key() == u.Key() || g.granted(u, a) {
		return nil
	}
	res, err := store.Resolve(ctx, dir, a.String(), resolve)
	switch {
	case err == nil:
		for _, mb := range res.Local {
			if m, err := store.ParseAddress(mb.Address); err == nil && m.Key() == u.Key() {
				return nil
			}
		}
	case isNoSuchAddress(err):
	default:
		return err
	}
	return errNotOwner
}

// ErrNotOwner is SenderCheck's answer for an address the user may not
// send as.
var ErrNotOwner = errors.New("smtp: address not owned by the user")

// SenderCheck returns the submission server's rule for the addresses a
// user may send as (the user's own, one whose forwarding delivers to the
// user's mailbox, one sendAs grants, as Options.SendAs), for mail the
// system writes on a user's behalf: local.SieveFilter.MayUse, so that a
// vacation's :from or a redirect's edited From passes the same check as
// submitted mail. The function returns nil, ErrNotOwner, or the
// directory's failure.
func SenderCheck(dir store.Directory, resolve store.ResolveOptions, sendAs map[string][]string) (func(ctx context.Context, user, addr string) error, error) {
	g, err := newGrants(sendAs)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, user, addr string) error {
		err := owns(ctx, dir, resolve, g, user, addr)
		if err == errNotOwner {
			return ErrNotOwner
		}
		return err
	}, nil
}

// headerAddrs reads From and Sender field values as mailbox lists.
// Display names are not decoded beyond what parsing needs: only the
// addresses count.
var headerAddrs = &netmail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) { return input, nil },
}}

// checkHeaderSenders applies mayUse to every address of every From and
// Sender field of a submitted message. A field that cannot be read as
// addresses is refused too: what a reader or signer makes of it cannot
// be known.
func (ss *session) checkHeaderSenders(values []string) error {
	for _, v := range values {
		list, err := headerAddrs.ParseList(v)
		if err != nil {
			ss.log.Info("message refused: From or Sender not readable", "id", ss.env.ID, "err", err)
			return errHeaderSenderSyntax
		}
		for _, a := range list {
			if err := ss.mayUse(a.Address); err != nil {
				if err == errNotOwner {
					ss.log.Info("message refused: header sender not owned", "id", ss.env.ID,
						"user", ss.user.Address, "address", a.Address)
					return errHeaderNotOwner
				}
				return err
			}
		}
	}
	return nil
}
