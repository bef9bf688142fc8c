package connlimit

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// refuseWithin bounds the whole of Refuse: handshake, reply and close.
const refuseWithin = 10 * time.Second

// MaxRefusing is how many refusals a Refusals runs at once.
const MaxRefusing = 64

// Refusals runs a server's refusals, each in a goroutine of its own (so
// that a slow client does not hold up Accept), at most MaxRefusing at
// once: past that, under a flood of connections beyond the limits, a
// refused connection is closed without a reply, so that refusing costs
// neither unbounded goroutines nor unbounded TLS handshakes. The zero
// value is ready to use.
type Refusals struct{ n atomic.Int32 }

// Refuse refuses nc as the function Refuse does, in the background, or
// closes it at once when MaxRefusing refusals are in progress.
func (r *Refusals) Refuse(nc net.Conn, tlsConfig *tls.Config, reply string) {
	if r.n.Add(1) > MaxRefusing {
		r.n.Add(-1)
		nc.Close()
		return
	}
	go func() {
		defer r.n.Add(-1)
		Refuse(nc, tlsConfig, reply)
	}()
}

// Refuse tells the client of nc why it is not served, reply being the
// protocol's busy reply with its CRLF, and closes nc. With tlsConfig
// set, for a listener that speaks TLS from the first byte, the reply
// goes over TLS, where the client can read it (plaintext there is
// garbage to it). It returns within 10 seconds whatever the client
// does; servers run it through Refusals.
func Refuse(nc net.Conn, tlsConfig *tls.Config, reply string) {
	_ = nc.SetDeadline(time.Now().Add(refuseWithin))
	var w io.WriteCloser = nc
	if tlsConfig != nil {
		w = tls.Server(nc, tlsConfig)
	}
	_, _ = io.WriteString(w, reply)
	_ = w.Close()
	_ = nc.Close()
}
