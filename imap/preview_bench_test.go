package imap

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/mimetree"
)

// previewBenchMessage is a newsletter-like message: text/plain and a
// 24 KiB text/html alternative.
func previewBenchMessage(i int) string {
	html := "<html><head><style>p{margin:0}</style></head><body>" +
		strings.Repeat("<p>Weekly news &amp; notes, item "+fmt.Sprint(i)+"</p>\r\n", 600) + "</body></html>\r\n"
	return fmt.Sprintf("Subject: letter %d\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWeekly news, item %d\r\n--b--\r\n", i, html, i)
}

// BenchmarkPreview: FETCH PREVIEW of 200 messages once their previews
// are cached, against FETCH BODYSTRUCTURE (from the same cache record)
// and FETCH UID (the index alone) in the same run; and making one
// preview against parsing the message's structure (what a first FETCH
// of either costs).
func BenchmarkPreview(b *testing.B) {
	st := newTestStack(b)
	for i := range 200 {
		st.deliver("alice@local.example", "INBOX", previewBenchMessage(i))
	}
	_, addr := st.serve(st.options())
	run := benchSession(b, addr)
	run("EXAMINE INBOX")
	run("FETCH 1:* PREVIEW") // made and cached once
	for _, item := range []string{"UID", "BODYSTRUCTURE", "PREVIEW"} {
		b.Run("fetch-"+item, func(b *testing.B) {
			for b.Loop() {
				run("FETCH 1:* (" + item + ")")
			}
		})
	}
	msg := toCRLF([]byte(previewBenchMessage(1)))
	b.Run("parse-structure", func(b *testing.B) {
		for b.Loop() {
			mimetree.Parse(bytes.NewReader(msg))
		}
	})
	tree, _ := mimetree.Parse(bytes.NewReader(msg))
	b.Run("make-preview", func(b *testing.B) {
		for b.Loop() {
			previewText(bytes.NewReader(msg), tree)
		}
	})
}
