package connlimit

import (
	"crypto/tls"
	"io"
	"net"
	"time"
)

// refuseWithin bounds the whole of Refuse: handshake, reply and close.
const refuseWithin = 10 * time.Second

// Refuse tells the client of nc why it is not served, reply being the
// protocol's busy reply with its CRLF, and closes nc. With tlsConfig
// set, for a listener that speaks TLS from the first byte, the reply
// goes over TLS, where the client can read it (plaintext there is
// garbage to it). It returns within 10 seconds whatever the client
// does; servers run it in a goroutine of its own, so that a slow client
// does not hold up Accept.
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
