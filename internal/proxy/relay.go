package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// relayBufSize is each direction's copy buffer: small, since an idle
// session holds two.
const relayBufSize = 4 << 10

// session is one client connection once logged in at its backend.
type session struct {
	p       *Proxy
	key     string
	client  net.Conn
	backend net.Conn
	// bye is what a kick tells the client, at a line boundary only;
	// "" closes without a word.
	bye string

	mu      sync.Mutex // the client's writes while relaying
	kicked  bool
	midLine bool // the last byte written to the client was not a line end
}

// register files s under its user for Kick.
func (s *session) register() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	set := s.p.sessions[s.key]
	if set == nil {
		set = map[*session]struct{}{}
		s.p.sessions[s.key] = set
	}
	set[s] = struct{}{}
}

func (s *session) unregister() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if set := s.p.sessions[s.key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(s.p.sessions, s.key)
		}
	}
}

// kick ends the session: the backend first, so that nothing more of its
// output reaches the client after the goodbye.
func (s *session) kick() {
	s.mu.Lock()
	s.kicked = true
	s.backend.Close()
	if s.bye != "" && !s.midLine {
		s.client.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(s.client, s.bye)
	}
	s.mu.Unlock()
	s.client.Close()
}

func (s *session) close() {
	s.backend.Close()
	s.client.Close()
}

// relay copies bytes both ways until either side ends (s is registered:
// it is unregistered at the end), starting with
// what each side's reader had buffered (commands the client pipelined
// after its login; the backend's output after its reply): the readers
// themselves are not kept, an idle session holds only its two buffers.
func (s *session) relay(fromClient, fromBackend []byte) {
	defer s.unregister()
	s.client.SetDeadline(time.Time{})
	s.backend.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.backend.Close()
		if len(fromClient) > 0 {
			if _, err := s.backend.Write(fromClient); err != nil {
				return
			}
		}
		buf := make([]byte, relayBufSize)
		for {
			n, err := s.client.Read(buf)
			if n > 0 {
				if _, werr := s.backend.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if len(fromBackend) > 0 {
		s.write(fromBackend)
	}
	buf := make([]byte, relayBufSize)
	for {
		n, err := s.backend.Read(buf)
		if n > 0 && !s.write(buf[:n]) {
			break
		}
		if err != nil {
			break
		}
	}
	// Under mu: a kick's goodbye, written under it, goes out first.
	s.mu.Lock()
	s.client.Close()
	s.mu.Unlock()
	s.backend.Close()
	<-done
}

// write passes the backend's b to the client unless the session was
// kicked.
func (s *session) write(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked {
		return false
	}
	_, err := s.client.Write(b)
	s.midLine = b[len(b)-1] != '\n'
	return err == nil
}

// pending returns a copy of what br buffered, for relay.
func pending(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return bytes.Clone(b)
}
