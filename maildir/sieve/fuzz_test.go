package sieve

import (
	"context"
	"testing"
)

// FuzzParseRun parses arbitrary scripts and runs those that parse against a
// fixed message: neither may panic, and a run stays within its limits.
func FuzzParseRun(f *testing.F) {
	for _, s := range diffScripts {
		f.Add(s)
	}
	f.Add("require \"vacation\";\nvacation text:\nline\n..\n.\n;")
	f.Add(`require ["variables"]; set "a" "${b}${1}${"; /* c */ # d`)
	msg := ParseMessage([]byte(diffMessages[2].text))
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse([]byte(src), Limits{MaxNesting: 16})
		if err != nil {
			return
		}
		res, _ := Run(context.Background(), s, msg, Envelope{From: "a@b.c", To: "d@e.f"},
			Options{Loader: mapLoader(diffIncludes), Limits: Limits{MaxSteps: 5000}})
		if res == nil || len(res.Actions) > 33 {
			t.Fatalf("result %+v", res)
		}
	})
}
