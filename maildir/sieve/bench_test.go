package sieve

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// rules20 is a 20-rule script of the kind users keep: header, address,
// envelope, list and spam tests filing into folders, flags and a vacation.
func rules20() string {
	var b strings.Builder
	b.WriteString(`require ["fileinto","envelope","imap4flags","variables","relational","comparator-i;ascii-numeric","subaddress","regex","vacation"];` + "\n")
	for i := range 14 {
		fmt.Fprintf(&b, "if header :contains \"subject\" \"project-%d\" { fileinto \"Projects/%d\"; stop; }\n", i, i)
	}
	b.WriteString(`if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; stop; }` + "\n")
	b.WriteString(`if address :domain :is "from" ["spam.example", "ads.example"] { discard; stop; }` + "\n")
	b.WriteString(`if header :matches "list-id" "*<*.*>*" { fileinto "Lists/${2}"; stop; }` + "\n")
	b.WriteString(`if envelope :detail "to" "shop" { addflag "\\Seen"; fileinto "Shop"; }` + "\n")
	b.WriteString(`if header :regex "subject" "^(re|fwd):" { addflag "$Reply"; }` + "\n")
	b.WriteString(`if not exists "precedence" { vacation :days 7 "I am away until Monday."; }` + "\n")
	return b.String()
}

// BenchmarkDecide measures deciding the actions for one message: "none"
// is the baseline (reading the message, no script), "rules20" adds parsing
// nothing (the script is compiled once, as at delivery) and running 20 rules.
func BenchmarkDecide(b *testing.B) {
	raw := []byte(diffMessages[0].text + strings.Repeat("Body line of an ordinary message, seventy characters or so long.\r\n", 60))
	env := Envelope{From: "alice@example.org", To: "bob@example.com"}
	s, err := Parse([]byte(rules20()), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			m := ParseMessage(raw)
			if len(m.Header) == 0 {
				b.Fatal("no header")
			}
		}
	})
	b.Run("rules20", func(b *testing.B) {
		for b.Loop() {
			res, err := Run(context.Background(), s, ParseMessage(raw), env, Options{})
			if err != nil || len(res.Actions) != 2 {
				b.Fatalf("%v %+v", err, res)
			}
		}
	})
	b.Run("parse20", func(b *testing.B) {
		src := []byte(rules20())
		for b.Loop() {
			if _, err := Parse(src, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
