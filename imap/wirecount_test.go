package imap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// wireTraffic is what went over one or more IMAP connections between a
// real client and the server, as a counting proxy saw it: the commands
// the client sent by name, the untagged FETCH responses and how many of
// them carried message data (a literal: BODY[...], RFC822, BINARY[...]),
// and the bytes each way. It is how the interop tests check that an
// incremental sync transfers only what changed.
type wireTraffic struct {
	Commands   map[string]int // "UID FETCH", "APPEND", "SELECT", ...
	Fetches    []string       // the FETCH and UID FETCH command lines
	FetchResp  int            // untagged "* n FETCH" responses
	BodyResp   int            // of those, responses with a literal
	Whole      int            // of those, responses with a whole message (BODY[], RFC822, BINARY[])
	BodyBytes  int64          // the literals' bytes in FETCH responses
	Up, Down   int64          // bytes client to server, server to client
	Connection int            // connections made
	Transcript []string       // the dialog's lines ("C: ", "S: "), the first 5,000, for failure messages
}

func (w wireTraffic) String() string {
	return fmt.Sprintf("%d connections, %d FETCH responses (%d with message data, %d whole messages, %d bytes), %d bytes up, %d down, commands %v",
		w.Connection, w.FetchResp, w.BodyResp, w.Whole, w.BodyBytes, w.Up, w.Down, w.Commands)
}

// wireCounter is a TCP proxy in front of an IMAP server counting
// wireTraffic. The clients under test speak plain IMAP to it, so that
// it can read the dialog; for the same reason it takes COMPRESS=DEFLATE
// out of the server's capabilities.
type wireCounter struct {
	Addr string
	mu   sync.Mutex
	cur  wireTraffic
}

// countingProxy listens on 127.0.0.1:0 and forwards every connection to
// target, until the test ends.
func countingProxy(t *testing.T, target string) *wireCounter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	wc := &wireCounter{Addr: l.Addr().String()}
	wc.cur.Commands = map[string]int{}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wc.mu.Lock()
			wc.cur.Connection++
			wc.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); wc.pump(s, c, false); s.Close(); c.Close() }()
			go func() { defer wg.Done(); wc.pump(c, s, true); c.Close(); s.Close() }()
		}
	}()
	return wc
}

// Take returns the traffic counted since the last Take and starts anew.
// Call it once the client has exited: its connections are then closed.
func (wc *wireCounter) Take() wireTraffic {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	w := wc.cur
	wc.cur = wireTraffic{Commands: map[string]int{}}
	return w
}

var (
	literalAtEnd = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)
	fetchResp    = regexp.MustCompile(`^\* \d+ FETCH `)
	wholeItem    = regexp.MustCompile(`(?i)(BODY\[\]|RFC822|BINARY\[\])(<0>)? \{\d+\}\r?\n$`)
)

// pump copies one direction of a connection line by line, literals as
// they come (counted ahead), and counts what it sees. IMAP is line-based apart from
// literals, so every line is forwarded as soon as it is complete and a
// client waiting for a continuation request never waits on the proxy.
func (wc *wireCounter) pump(dst io.Writer, src io.Reader, fromServer bool) {
	r := bufio.NewReaderSize(src, 64<<10)
	first := true // the next line starts a command or response
	var kind string
	counted := false // the response's message data was counted
	for {
		line, err := r.ReadString('\n')
		if fromServer && first {
			// A compressed dialog could not be read: the proxy hides
			// the offer from clients that would take it (mbsync does,
			// unasked).
			line = strings.Replace(line, " COMPRESS=DEFLATE", "", 1)
		}
		if err != nil {
			// A last line without its end is passed on uncounted.
			io.WriteString(dst, line)
			return
		}
		// Counted before it is passed on, so that what a client has
		// read is in the count when it exits and the test takes it.
		wc.mu.Lock()
		if fromServer {
			wc.cur.Down += int64(len(line))
		} else {
			wc.cur.Up += int64(len(line))
		}
		if len(wc.cur.Transcript) < 5000 {
			dir := "C: "
			if fromServer {
				dir = "S: "
			}
			wc.cur.Transcript = append(wc.cur.Transcript, dir+strings.TrimRight(line, "\r\n"))
		}
		if first {
			kind, counted = "", false
			switch {
			case fromServer && fetchResp.MatchString(line):
				kind = "fetch"
				wc.cur.FetchResp++
			case !fromServer:
				name := commandName(line)
				wc.cur.Commands[name]++
				if name == "FETCH" || name == "UID FETCH" {
					wc.cur.Fetches = append(wc.cur.Fetches, strings.TrimRight(line, "\r\n"))
				}
			}
		}
		m := literalAtEnd.FindStringSubmatch(line)
		var n int64
		if m != nil {
			n, _ = strconv.ParseInt(m[1], 10, 64)
			if kind == "fetch" {
				wc.cur.BodyBytes += n
				if wholeItem.MatchString(line) {
					wc.cur.Whole++
				}
				if !counted {
					wc.cur.BodyResp++
					counted = true
				}
			}
			if fromServer {
				wc.cur.Down += n
			} else {
				wc.cur.Up += n
			}
		}
		wc.mu.Unlock()
		if _, err := io.WriteString(dst, line); err != nil {
			return
		}
		first = m == nil
		if m != nil {
			if _, err := io.CopyN(dst, r, n); err != nil {
				return
			}
		}
	}
}

// commandName is a client line's command: the word after the tag, with
// UID's command after it ("UID FETCH"). A line of one word is no command
// but a continuation (a SASL response, IDLE's DONE).
func commandName(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "(continuation)"
	}
	name := strings.ToUpper(f[1])
	if name == "UID" && len(f) > 2 {
		name += " " + strings.ToUpper(f[2])
	}
	return name
}

// TestCountingProxy: the proxy passes a dialog through unchanged apart
// from the COMPRESS=DEFLATE offer, and counts commands, FETCH responses,
// literals and whole messages as the interop tests read them.
func TestCountingProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	msg := "Subject: x\r\n\r\nbody\r\n"
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE IDLE] hi\r\n")
		r.ReadString('\n') // a1 UID FETCH
		fmt.Fprintf(c, "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {12}\r\nSubject: x\r\n BODY[] {%d}\r\n%s)\r\n", len(msg), msg)
		fmt.Fprintf(c, "* 2 FETCH (UID 8 FLAGS (\\Seen))\r\na1 OK done\r\n")
		r.ReadString('\n') // a2 LOGOUT
		fmt.Fprintf(c, "* BYE\r\na2 OK bye\r\n")
	}()
	p := countingProxy(t, l.Addr().String())
	c, err := net.Dial("tcp", p.Addr)
	must(t, err)
	r := bufio.NewReader(c)
	var got strings.Builder
	readUntil := func(tag string) {
		for {
			s, err := r.ReadString('\n')
			must(t, err)
			got.WriteString(s)
			if strings.HasPrefix(s, tag) {
				return
			}
		}
	}
	readUntil("* OK")
	fmt.Fprintf(c, "a1 UID FETCH 7:8 (FLAGS BODY.PEEK[])\r\n")
	readUntil("a1 ")
	fmt.Fprintf(c, "a2 LOGOUT\r\n")
	readUntil("a2 ")
	c.Close()
	want := "* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n" +
		"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {12}\r\nSubject: x\r\n BODY[] {20}\r\n" + msg + ")\r\n" +
		"* 2 FETCH (UID 8 FLAGS (\\Seen))\r\na1 OK done\r\n* BYE\r\na2 OK bye\r\n"
	if got.String() != want {
		t.Fatalf("through the proxy:\n%q\nwant\n%q", got.String(), want)
	}
	w := p.Take()
	if w.Commands["UID FETCH"] != 1 || w.Commands["LOGOUT"] != 1 || w.FetchResp != 2 || w.BodyResp != 1 || w.Whole != 1 || w.BodyBytes != int64(12+len(msg)) || w.Connection != 1 {
		t.Fatalf("counted %s", w)
	}
}
