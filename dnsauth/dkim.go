package dnsauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMStatus is the result of verifying one DKIM signature, spelled as in
// Authentication-Results (RFC 8601 section 2.7.1).
type DKIMStatus string

// The DKIM results.
const (
	DKIMNone      DKIMStatus = "none" // the message has no signature
	DKIMPass      DKIMStatus = "pass"
	DKIMFail      DKIMStatus = "fail"      // the signature or body hash does not match
	DKIMTempError DKIMStatus = "temperror" // the key could not be fetched for now
	DKIMPermError DKIMStatus = "permerror" // malformed signature, no or bad key
)

// DKIMResult is the outcome of verifying one DKIM-Signature field.
type DKIMResult struct {
	Status     DKIMStatus
	Domain     string // d=, the signing domain (SDID)
	Selector   string // s=
	Identifier string // i=, "@" Domain when absent
	Algorithm  string // a=, e.g. rsa-sha256 or ed25519-sha256
	// HeaderB is the start of b=, enough to tell signatures apart in
	// Authentication-Results (header.b, RFC 6008).
	HeaderB string
	Err     error // why the status is not pass
}

// DKIMMaxSignatures bounds the signatures verified per message, so that a
// message cannot make us do unbounded key lookups and RSA operations; the
// rest are ignored.
const DKIMMaxSignatures = 10

// VerifyDKIM verifies every DKIM-Signature field of msg (RFC 6376 section
// 6, with the algorithms of RFC 8301 and RFC 8463), fetching keys through r
// under ctx. It returns one result per signature, in header order, and no
// result for an unsigned message; the error is for a message that cannot be
// read, not for a bad signature.
//
// The keys of a message's signatures are looked up concurrently: go-msgauth
// verifies several signatures in parallel, each fetching its key as it
// starts, so a slow resolver costs one lookup's time for all of them.
// VerifyDKIM returns once every lookup has returned; it relies on r to end
// a lookup when ctx ends. VerifyMessage also looks up the DMARC record at
// the same time.
func VerifyDKIM(ctx context.Context, r Resolver, msg io.Reader) ([]DKIMResult, error) {
	br := bufio.NewReader(msg)
	hdr, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	return verifyDKIM(ctx, r, hdr, br)
}

// verifyDKIM is VerifyDKIM once the header section hdr has been read from
// msg, which holds the rest of the message.
func verifyDKIM(ctx context.Context, r Resolver, hdr []byte, body io.Reader) ([]DKIMResult, error) {
	var results []DKIMResult
	for _, f := range splitHeader(hdr) {
		if !strings.EqualFold(f.name, "DKIM-Signature") {
			continue
		}
		if len(results) == DKIMMaxSignatures {
			break
		}
		res := DKIMResult{}
		if tags, err := ParseDKIMTags(f.value()); err == nil {
			res.Domain = strings.ToLower(stripFWS(tags["d"]))
			res.Selector = stripFWS(tags["s"])
			res.Identifier = stripFWS(tags["i"])
			res.Algorithm = strings.ToLower(stripFWS(tags["a"]))
			res.HeaderB = stripFWS(tags["b"])
			if len(res.HeaderB) > 12 {
				res.HeaderB = res.HeaderB[:12]
			}
		}
		if res.Identifier == "" && res.Domain != "" {
			res.Identifier = "@" + res.Domain
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		return nil, nil
	}
	opts := &dkim.VerifyOptions{
		MaxVerifications: DKIMMaxSignatures,
		LookupTXT: func(name string) ([]string, error) {
			return r.LookupTXT(ctx, name)
		},
	}
	br := &eofOnError{r: body}
	verifs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(hdr), br), opts)
	if br.err != nil {
		return nil, br.err
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, err
	}
	for i := range results {
		if i >= len(verifs) {
			results[i].Status, results[i].Err = DKIMPermError, errors.New("dkim: signature not evaluated")
			continue
		}
		v := verifs[i]
		res := &results[i]
		res.Err = v.Err
		switch {
		case v.Err == nil:
			res.Status = DKIMPass
		case dkim.IsTempFail(v.Err):
			res.Status = DKIMTempError
		case dkim.IsPermFail(v.Err):
			res.Status = DKIMPermError
		default:
			res.Status = DKIMFail
		}
		if v.Domain != "" {
			res.Domain = strings.ToLower(v.Domain)
		}
		if v.Identifier != "" {
			res.Identifier = v.Identifier
		}
	}
	return results, nil
}

// eofOnError reads r and ends at its first error, which it keeps in err
// and reports as io.EOF. go-msgauth, verifying several signatures, copies
// the body into one pipe per signature and, when the copy fails, returns
// without closing them, leaving the goroutine verifying each signature
// blocked for good; an EOF closes them.
type eofOnError struct {
	r   io.Reader
	err error
}

func (e *eofOnError) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err, err = err, io.EOF
	}
	return n, err
}
