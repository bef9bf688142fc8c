package dnsauth

import (
	"bufio"
	"context"
	"io"

	"github.com/emersion/go-msgauth/dmarc"
)

// MessageAuth is the DKIM and DMARC evaluation of one message, as
// VerifyMessage returns it.
type MessageAuth struct {
	// DKIM holds one result per signature, as VerifyDKIM returns them.
	DKIM []DKIMResult
	// From is the domain DMARC protects, as FromDomain returns it; FromErr
	// says why it is empty.
	From    string
	FromErr error
	// DMARC is EvaluateDMARC's result for From, nil when From is empty or
	// no SPF result was given.
	DMARC *DMARCResult
}

// VerifyMessage makes the checks of the end of DATA on msg: VerifyDKIM,
// then, when the header names a single From domain and spf is not nil,
// EvaluateDMARC with *spf and the DKIM results. The results are those of
// these calls made in turn, but the DMARC record lookups (the From domain's
// record, then, if it has none, its organizational domain's) run
// concurrently with the DKIM key lookups, so that a slow resolver costs the
// message the time of the longer of the two rather than of both. The
// error is VerifyDKIM's, for a message that cannot be read; the
// MessageAuth is then empty. VerifyMessage returns once every lookup it
// started has returned; it relies on r to end a lookup when ctx ends.
func VerifyMessage(ctx context.Context, r Resolver, msg io.Reader, spf *SPFResult) (MessageAuth, error) {
	br := bufio.NewReader(msg)
	hdr, err := readHeader(br)
	if err != nil {
		return MessageAuth{}, err
	}
	var out MessageAuth
	out.From, out.FromErr = FromDomain(hdr)

	type dmarcAnswer struct {
		rec *dmarc.Record
		at  string
		err error
	}
	var answer chan dmarcAnswer
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if from := out.From; out.FromErr == nil && spf != nil {
		answer = make(chan dmarcAnswer, 1)
		go func() {
			rec, at, err := lookupDMARC(dctx, r, from)
			answer <- dmarcAnswer{rec, at, err}
		}()
	}

	out.DKIM, err = verifyDKIM(ctx, r, hdr, br)
	if err != nil {
		if answer != nil {
			cancel()
			<-answer
		}
		return MessageAuth{}, err
	}
	if answer != nil {
		a := <-answer
		d := evaluateDMARC(out.From, a.rec, a.at, a.err, *spf, out.DKIM)
		out.DMARC = &d
	}
	return out, nil
}
