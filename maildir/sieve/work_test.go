package sieve

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A single :matches, :regex or include does work in proportion to its
// inputs, not one step whatever their size: a pattern built to backtrack
// over a long value ends the run with "script ran too long" (and the
// implicit keep) after at most MaxSteps steps' worth of work, instead of
// running for minutes inside one step.
func TestMatchWorkBounded(t *testing.T) {
	long := strings.Repeat("a", 200_000)
	msg := ParseMessage([]byte("Subject: x\r\n\r\n" + long + "\r\n"))
	pattern := "*" + strings.Repeat("a", 30_000) + "b"
	cases := map[string]string{
		"matches": `require "body"; if body :raw :matches "` + pattern + `" { discard; }`,
		"regex":   `require ["body","regex"]; if body :raw :regex "` + strings.Repeat("a?", 2000) + strings.Repeat("a", 2000) + `b" { discard; }`,
	}
	for name, script := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse([]byte(script), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), s, msg, Envelope{}, Options{Limits: Limits{MaxSteps: 2000}})
			if err == nil || !strings.Contains(err.Error(), "script ran too long") {
				t.Fatalf("Run: %v, want the step limit", err)
			}
			if got := canonical(res, nil); got != "implicit store INBOX" {
				t.Fatalf("actions %q, want the implicit keep", got)
			}
		})
	}
	// An ordinary match over the same value stays well within the limit.
	s, _ := Parse([]byte(`require "body"; if body :raw :matches "*aaab*" { discard; } elsif body :raw :contains "aaa" { discard; }`), Limits{})
	if res, err := Run(context.Background(), s, msg, Envelope{}, Options{Limits: Limits{MaxSteps: 2000}}); err != nil || canonical(res, err) != "discard" {
		t.Fatalf("ordinary match: %q, %v", canonical(res, err), err)
	}
}

// Many keys over a long value cost what they read: 5,000 :contains keys
// over a 200 KB body are a billion characters, not 5,000 steps.
func TestManyKeysWorkBounded(t *testing.T) {
	msg := ParseMessage([]byte("Subject: x\r\n\r\n" + strings.Repeat("a", 200_000) + "\r\n"))
	keys := strings.TrimSuffix(strings.Repeat(`"b", `, 5000), ", ")
	s, err := Parse([]byte(`require "body"; if body :raw :contains [`+keys+`] { discard; }`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s, msg, Envelope{}, Options{Limits: Limits{MaxSteps: 20000}}); err == nil || !strings.Contains(err.Error(), "script ran too long") {
		t.Fatalf("Run: %v, want the step limit", err)
	}
}

// A string of many variable references expands to at most four
// variables' worth, and is never built larger first: 100,000 references
// to a 4 KiB variable would be 400 MB.
func TestExpansionBounded(t *testing.T) {
	script := `require "variables"; set "x" "` + strings.Repeat("a", 4096) + `"; if header :is "subject" "` + strings.Repeat("${x}", 100_000) + `" { discard; }`
	s, err := Parse([]byte(script), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	msg := ParseMessage([]byte("Subject: x\r\n\r\nbody\r\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Run(context.Background(), s, msg, Envelope{}, Options{})
	runtime.ReadMemStats(&after)
	if got := canonical(res, err); got != "implicit store INBOX" {
		t.Fatalf("Run: %q", got)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("the run allocated %d MB", n>>20)
	}
}

// addheader adds fields of at most 2,048 bytes, and each costs its copy
// of the header, so that a script of many addheaders ends with the step
// limit instead of holding hundreds of megabytes of header.
func TestAddHeaderBounded(t *testing.T) {
	msg := ParseMessage([]byte("Subject: x\r\n\r\nbody\r\n"))
	long := `require "editheader"; addheader "X-A" "` + strings.Repeat("a", 2100) + `";`
	s, err := Parse([]byte(long), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s, msg, Envelope{}, Options{}); err == nil || !strings.Contains(err.Error(), "longer than 2048") {
		t.Fatalf("a 2,100-byte field: %v", err)
	}
	many := `require ["editheader","variables"]; set "v" "` + strings.Repeat("b", 2000) + `";` + strings.Repeat(`addheader "X-B" "${v}";`, 40000)
	if s, err = Parse([]byte(many), Limits{}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Run(context.Background(), s, msg, Envelope{}, Options{})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "script ran too long") {
		t.Fatalf("40,000 addheaders: %v, want the step limit", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
		t.Fatalf("the run allocated %d MB", n>>20)
	}
}

// A scope holds at most 255 variables (Pigeonhole's
// sieve_variables_max_scope_size): a script of thousands of distinct sets
// of 4 KiB values fails instead of holding them all.
func TestVariablesPerScope(t *testing.T) {
	msg := ParseMessage([]byte("Subject: x\r\n\r\nbody\r\n"))
	sets := func(n int) string {
		var b strings.Builder
		b.WriteString(`require ["variables","fileinto"]; set "x" "` + strings.Repeat("a", 4096) + `";`)
		for i := range n {
			fmt.Fprintf(&b, `set "v%d" "${x}";`, i)
		}
		b.WriteString(`set "v0" "again"; fileinto "F";`)
		return b.String()
	}
	for n, want := range map[int]string{254: "store F", 5000: "error; implicit keep"} {
		s, err := Parse([]byte(sets(n)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), s, msg, Envelope{}, Options{})
		if got := canonical(res, err); got != want {
			t.Errorf("%d variables: %q (%v), want %q", n+1, got, err, want)
		}
	}
}
