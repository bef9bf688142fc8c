package imap

import (
	"io"
)

// recordSplitter passes a client's first TLS handshake records (the
// ClientHello) on to crypto/tls cut into small records, one record per
// Read, and the rest of the connection as it comes.
//
// crypto/tls keeps, for the life of a connection, the buffer it read
// the ClientHello's records into (grown to the largest record plus
// 512 bytes) and the one it gathered the handshake message in. A
// ClientHello with a post-quantum key share is about 1.5 KiB, in one
// record: 2 KiB and 1.5 KiB kept by every idle connection. In records of
// at most maxFragment bytes, one per Read, the record buffer never grows
// past its first allocation (576 bytes). TLS allows a handshake message
// in any number of records (RFC 8446 section 5.1): records are not part
// of the handshake transcript, only the messages are.
//
// The fragment sizes follow the growth of the message buffer (a
// bytes.Buffer, which doubles): the first fragment is chosen so that
// doubling ends at the smallest allocation that holds the whole
// message. Only plaintext handshake records are cut: splitting ends at
// the first record of another type (ChangeCipherSpec, or encrypted data
// in TLS 1.3), before anything encrypted.
type recordSplitter struct {
	hdr  [5]byte // header of the record being passed on
	left int     // its payload bytes not yet passed on

	msgLen     int // the first handshake message's length with its header; 0 until known
	hlen, hcap int // what crypto/tls's message buffer holds and its capacity
}

const (
	recordTypeHandshake = 22
	// maxFragment is the most payload passed on per record: with its
	// header it fills the 576 bytes crypto/tls's record buffer starts
	// with, and Reads of up to that much do not grow it.
	maxFragment = 576 - 5
)

// read fills p with the next record, or part of one. done reports that
// splitting is over: the bytes returned are the header of a record that
// is not a handshake record, and what follows is passed on unchanged.
func (s *recordSplitter) read(r io.Reader, p []byte) (n int, done bool, err error) {
	if len(p) < 9 {
		return 0, false, io.ErrShortBuffer
	}
	if s.left == 0 {
		if _, err := io.ReadFull(r, s.hdr[:]); err != nil {
			return 0, false, err
		}
		s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
		if s.hdr[0] != recordTypeHandshake || s.left == 0 {
			return copy(p, s.hdr[:]), true, nil
		}
	}
	max := min(len(p)-5, maxFragment, s.left)
	w := 0
	if s.msgLen == 0 && s.hlen == 0 && s.left >= 4 {
		// The message's length comes first: read it, then choose
		// how much to pass on with it.
		if _, err := io.ReadFull(r, p[5:9]); err != nil {
			return 0, false, err
		}
		w = 4
		s.msgLen = 4 + (int(p[6])<<16 | int(p[7])<<8 | int(p[8]))
		max = min(max, firstFragment(s.msgLen))
	} else if s.hlen < s.msgLen {
		if room := s.hcap - s.hlen; room > 0 {
			max = min(max, room)
		} else {
			max = min(max, s.hcap)
		}
	}
	if w < max {
		m, err := io.ReadFull(r, p[5+w:5+max])
		w += m
		if err != nil {
			return 0, false, err
		}
	}
	s.left -= w
	s.account(w)
	copy(p, s.hdr[:3])
	p[3], p[4] = byte(w>>8), byte(w)
	return 5 + w, false, nil
}

// account follows what a bytes.Buffer does with a Write of w bytes.
func (s *recordSplitter) account(w int) {
	if s.hlen >= s.msgLen && s.msgLen != 0 {
		return // the first message is complete; the rest is not planned
	}
	switch {
	case s.hcap == 0:
		s.hcap = 64 // bytes.Buffer's smallest allocation
		if w > 64 {
			s.hcap = sizeClass(w)
		}
	case s.hlen+w > s.hcap:
		s.hcap = sizeClass(max(s.hlen+w, 2*s.hcap))
	}
	s.hlen += w
}

// firstFragment is the size of the first fragment of a handshake message
// of msgLen bytes: the one after which doubling a bytes.Buffer reaches
// the smallest allocation holding msgLen bytes, the largest such.
func firstFragment(msgLen int) int {
	if msgLen <= maxFragment {
		return msgLen
	}
	best, bestFinal := maxFragment, doubledTo(sizeClass(maxFragment), msgLen)
	for _, c := range sizeClasses {
		if c <= 64 || c > maxFragment {
			continue
		}
		if f := doubledTo(c, msgLen); f < bestFinal || (f == bestFinal && c > best) {
			best, bestFinal = c, f
		}
	}
	return best
}

// doubledTo is the capacity a bytes.Buffer of capacity c reaches by
// doubling until it holds n bytes.
func doubledTo(c, n int) int {
	for c < n {
		c = sizeClass(2 * c)
	}
	return c
}

// sizeClass is the capacity the Go allocator gives a byte slice of n
// bytes (runtime size classes up to 32 KiB; beyond, whole pages).
func sizeClass(n int) int {
	for _, c := range sizeClasses {
		if c >= n {
			return c
		}
	}
	return (n + 8191) &^ 8191
}

var sizeClasses = []int{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
	240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768,
	896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200,
	3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240,
	10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576,
	27264, 28672, 32768,
}
