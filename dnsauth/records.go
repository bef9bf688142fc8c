package dnsauth

// Record is one DNS resource record, as a zone file writes it.
type Record struct {
	Name  string // owner name, fully qualified, without the trailing dot
	Type  string // MX, A, AAAA, TXT, PTR, CNAME
	Value string // presentation form; a TXT value is the joined text, unquoted
}
