package dnsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strings"
	"testing"
)

// benchMessage is a 10 KB message of 76-byte text lines.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: Joe <joe@a.test>\r\nTo: sue@b.test\r\nSubject: benchmark\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@a.test>\r\n\r\n")
	line := strings.Repeat("0123456789 ", 7)[:74] + "\r\n"
	for b.Len() < 10*1024 {
		b.WriteString(line)
	}
	return b.Bytes()
}

// BenchmarkSHA256Message is the baseline: hashing the message once.
func BenchmarkSHA256Message(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		sha256.Sum256(msg)
	}
}

func benchKey(b *testing.B, algo string) (*DKIMKey, *MockResolver) {
	k, err := GenerateDKIMKey("a.test", "s", algo)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := k.Record()
	m := &MockResolver{}
	m.AddRecord(r)
	return k, m
}

func BenchmarkDKIMSign(b *testing.B) {
	for _, algo := range []string{DKIMAlgoRSA, DKIMAlgoEd25519} {
		b.Run(algo, func(b *testing.B) {
			k, _ := benchKey(b, algo)
			s := NewSigner([]*DKIMKey{k})
			msg := benchMessage()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := s.Sign(context.Background(), bytes.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDKIMVerify(b *testing.B) {
	for _, algo := range []string{DKIMAlgoRSA, DKIMAlgoEd25519} {
		b.Run(algo, func(b *testing.B) {
			k, m := benchKey(b, algo)
			msg := benchMessage()
			sig, err := NewSigner([]*DKIMKey{k}).Sign(context.Background(), bytes.NewReader(msg))
			if err != nil {
				b.Fatal(err)
			}
			signed := append([]byte(sig), msg...)
			b.SetBytes(int64(len(signed)))
			for b.Loop() {
				res, err := VerifyDKIM(context.Background(), m, bytes.NewReader(signed))
				if err != nil || res[0].Status != DKIMPass {
					b.Fatal(res, err)
				}
			}
		})
	}
}
