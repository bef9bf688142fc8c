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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &lineReader{br: bufio.NewReaderSize(bytes.NewReader(b), 64), cont: io.Discard, max: 256}
		for range 8 {
			cmd, err := r.readIMAP()
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
