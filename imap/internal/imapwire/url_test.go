package imapwire

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want URL
	}{
		{"/INBOX/;UID=20", URL{Mailbox: "INBOX", UID: 20}},
		{"/Drafts;uidvalidity=385759045/;uid=20/;section=HEADER", URL{Mailbox: "Drafts", UIDValidity: 385759045, UID: 20,
			Section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}}},
		{"/a%20b%C3%A4.c/;UID=1/;SECTION=1.2.MIME/;PARTIAL=10.5", URL{Mailbox: "a bä.c", UID: 1,
			Section: &imap.FetchItemBodySection{Part: []int{1, 2}, Specifier: imap.PartSpecifierMIME},
			Partial: &imap.SectionPartial{Offset: 10, Size: 5}}},
		{"/x/;UID=1/;PARTIAL=0", URL{Mailbox: "x", UID: 1, Partial: &imap.SectionPartial{Size: -1}}},
		{"/x/;UID=1/;SECTION=HEADER.FIELDS%20(From%20To)", URL{Mailbox: "x", UID: 1,
			Section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "To"}}}},
		{"imap://alice%40example.org;AUTH=*@mail.example.org:143/INBOX/;UID=3", URL{Absolute: true, User: "alice@example.org", Auth: "*",
			Host: "mail.example.org", Port: 143, Mailbox: "INBOX", UID: 3}},
		{"IMAP://bob@[::1]/INBOX/;UID=3/;URLAUTH=anonymous:internal:0123", URL{Absolute: true, User: "bob", Host: "[::1]",
			Mailbox: "INBOX", UID: 3, URLAuth: true}},
		{"/x/;UID=1/;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=user+a:internal:00", URL{Mailbox: "x", UID: 1, URLAuth: true}},
		{";uid=7/;SECTION=TEXT", URL{UID: 7, Section: &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}}},
	}
	for _, tc := range good {
		u, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if got, want := describeURL(u), describeURL(&tc.want); got != want {
			t.Errorf("ParseURL(%q) = %s, want %s", tc.in, got, want)
		}
	}
	bad := []string{
		"", "INBOX/;UID=1", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=4294967296", "/INBOX/;UID=1x",
		"/;UID=1", ";UIDVALIDITY=5/;UID=1", "imap://host;UID=1", "imap://host/;UID=1", "/INBOX;UIDVALIDITY=0/;UID=1", "/INBOX;FOO=1/;UID=1", "/IN BOX/;UID=1", "/IN%2/;UID=1",
		"/IN%zzBOX/;UID=1", "/IN%00BOX/;UID=1", "/%FF/;UID=1", "/INBOX/;UID=1/;SECTION=", "/INBOX/;UID=1/;SECTION=BOGUS",
		"/INBOX/;UID=1/;SECTION=1.", "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20({3}%0D%0Aabc)",
		"/INBOX/;UID=1/;PARTIAL=1.0", "/INBOX/;UID=1/;PARTIAL=", "/INBOX/;UID=1/;PARTIAL=-1",
		"/INBOX/;UID=1/;PARTIAL=1/;SECTION=TEXT", "/INBOX/;UID=1/;FOO=1", "/INBOX/;UID=1/;URLAUTH=a/;URLAUTH=b",
		"imap://", "imap://host", "imap://@host/INBOX/;UID=1", "imap://host:99999/INBOX/;UID=1",
		"imap://host:/INBOX/;UID=1", "imap://ho st/INBOX/;UID=1", "imap://u;X=1@host/INBOX/;UID=1",
		"http://host/INBOX/;UID=1", "/" + strings.Repeat("a", MaxURL) + "/;UID=1",
	}
	for _, in := range bad {
		if u, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) = %s, want an error", in, describeURL(u))
		}
	}
}

// describeURL renders a URL for comparison.
func describeURL(u *URL) string {
	var b strings.Builder
	b.WriteString(u.User + "|" + u.Auth + "|" + u.Host + "|" + u.Mailbox + "|")
	if u.Absolute {
		b.WriteString("abs|")
	}
	if u.URLAuth {
		b.WriteString("urlauth|")
	}
	b.WriteString(strings.Join([]string{itoa(uint64(u.Port)), itoa(uint64(u.UIDValidity)), itoa(uint64(u.UID))}, ","))
	if s := u.Section; s != nil {
		b.WriteString("|section " + string(s.Specifier) + " " + strings.Join(s.HeaderFields, ",") + " " + strings.Join(s.HeaderFieldsNot, ","))
		for _, p := range s.Part {
			b.WriteString("." + itoa(uint64(p)))
		}
	}
	if p := u.Partial; p != nil {
		b.WriteString("|partial " + itoa(uint64(p.Offset)) + "." + itoa(uint64(p.Size+1)))
	}
	return b.String()
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// FuzzParseURL: any string parses or is refused without a panic; what
// parses names a message by UID in a mailbox of valid UTF-8 without
// control characters, or in the selected one when it starts ";UID=".
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"/INBOX/;UID=20", "/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2.HEADER.FIELDS%20(A%20B)/;PARTIAL=0.1024",
		"imap://alice;AUTH=*@mail.example.org:143/INBOX/;UID=3/;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=anonymous:internal:01",
		"imap://[::1]/a%C3%A4/;uid=1/;section=text", "/x/;UID=1/;PARTIAL=100000.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			return
		}
		if u.UID == 0 || (u.Mailbox == "") != hasPrefixFold(s, ";UID=") || !utf8.ValidString(u.Mailbox) || strings.ContainsFunc(u.Mailbox, isControl) {
			t.Fatalf("ParseURL(%q) = %+v", s, u)
		}
		if len(s) > MaxURL {
			t.Fatalf("ParseURL took %d bytes", len(s))
		}
		if p := u.Partial; p != nil && (p.Offset < 0 || p.Size < -1 || p.Size == 0) {
			t.Fatalf("partial %+v", p)
		}
		if u.Absolute != hasPrefixFold(s, "imap://") {
			t.Fatalf("absolute %v for %q", u.Absolute, s)
		}
	})
}
