package proxy

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// FuzzReadIMAP: any input gives a command or an error, within the
// limit, never a panic; quoting and parsing agree on what quote makes.
func FuzzReadIMAP(f *testing.F) {
	for _, s := range []string{
		"a LOGIN user pass\r\n",
		"a LOGIN \"us\\\"er\" {4}\r\npass\r\n",
		"a LOGIN {4+}\r\nuser {3}\r\npw!\r\n",
		"a ID (\"name\" \"x\" \"version\" NIL)\r\n",
		"a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n",
		"a LOGIN {99999999}\r\n",
		"\r\n",
		"a SELECT {5}\r\nb LOGIN x {3+}\r\npw!\r\nc NOOP\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var conts bytes.Buffer
		r := &lineReader{br: bufio.NewReaderSize(bytes.NewReader(b), 64), cont: &conts, max: 256}
		// For one input in two, commands with names of even length are
		// refused whatever their arguments: none of their literals is
		// asked for.
		r.refuse = func(name string) bool { return len(b)%2 == 0 && len(name)%2 == 0 }
		for range 8 {
			before := conts.Len()
			cmd, err := r.readIMAP()
			if r.refuse(cmd.name) && conts.Len() != before {
				t.Fatalf("continuation request for refused %q", cmd.name)
			}
			if err != nil {
				return
			}
			n := len(cmd.tag) + len(cmd.name)
			for _, a := range cmd.args {
				n += len(a)
			}
			if n > 256 {
				t.Fatalf("command of %d bytes over a 256-byte limit", n)
			}
			for _, a := range cmd.args {
				line := "t LOGIN " + quote(a) + "\r\n"
				back := &lineReader{br: bufio.NewReader(bytes.NewReader([]byte(line))), cont: io.Discard, max: 1 << 20}
				got, err := back.readIMAP()
				if err != nil || len(got.args) != 1 || got.args[0] != a {
					t.Fatalf("quote(%q) reads back as %q, %v", a, got.args, err)
				}
			}
		}
	})
}
