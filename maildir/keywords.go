package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// keywordsName is Dovecot's keyword file in each folder: one "<index>
// <name>" line per keyword; index i is info letter 'a'+i.
const keywordsName = "dovecot-keywords"

// maxKeywords is the number of keyword letters a file name can carry.
const maxKeywords = 26

var errBadKeywords = errors.New("maildir: corrupt dovecot-keywords")

// parseKeywords returns the keyword names by index ("" for gaps). Lines
// that are malformed or out of range are skipped and reported with
// errBadKeywords alongside the usable result.
func parseKeywords(data []byte) ([]string, error) {
	kw := make([]string, 0, maxKeywords)
	var bad error
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		idx, name, ok := strings.Cut(string(line), " ")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 || n >= maxKeywords || !validKeyword(name) || slicesIndex(kw, name) >= 0 {
			bad = errBadKeywords
			continue
		}
		for len(kw) <= n {
			kw = append(kw, "")
		}
		if kw[n] != "" {
			bad = errBadKeywords
			continue
		}
		kw[n] = name
	}
	return kw, bad
}

func marshalKeywords(kw []string) []byte {
	var b bytes.Buffer
	for i, k := range kw {
		if k == "" {
			continue
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func slicesIndex(kw []string, name string) int {
	for i, k := range kw {
		if k == name {
			return i
		}
	}
	return -1
}

// loadKeywords reads dir's dovecot-keywords; a missing file is no keywords
// and a damaged one keeps its usable lines.
func loadKeywords(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, keywordsName))
	if err != nil {
		return nil
	}
	kw, _ := parseKeywords(data)
	return kw
}

// ensureKeywords returns dir's keyword list after adding the names missing
// from it, under dovecot-keywords.lock as Dovecot does.
func (s *Store) ensureKeywords(ctx context.Context, dir string, names []string) ([]string, error) {
	kw := loadKeywords(dir)
	missing := func() bool {
		for _, n := range names {
			if slicesIndex(kw, n) < 0 {
				return true
			}
		}
		return false
	}
	if !missing() {
		return kw, nil
	}
	p := filepath.Join(dir, keywordsName)
	lock, err := acquireDotlock(ctx, p, s.pid, s.host)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	kw = loadKeywords(dir)
	for _, n := range names {
		if slicesIndex(kw, n) >= 0 {
			continue
		}
		if i := slicesIndex(kw, ""); i >= 0 {
			kw[i] = n
			continue
		}
		if len(kw) >= maxKeywords {
			return nil, ErrTooManyKeywords
		}
		kw = append(kw, n)
	}
	if err := writeFileAtomic(p, marshalKeywords(kw), false); err != nil {
		return nil, err
	}
	return kw, nil
}

// infoFor converts IMAP flags to Maildir info letters for a message in
// dir, registering new keywords. \Recent, which no client may set, is
// ignored.
func (s *Store) infoFor(ctx context.Context, dir string, flags []string) (string, error) {
	var letters []byte
	var kws []string
	for _, f := range flags {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		if l := sysFlagLetter(f); l != 0 {
			letters = append(letters, l)
			continue
		}
		if !validKeyword(f) {
			return "", fmt.Errorf("%w: %q", ErrInvalidFlag, f)
		}
		kws = append(kws, f)
	}
	if len(kws) > 0 {
		kw, err := s.ensureKeywords(ctx, dir, kws)
		if err != nil {
			return "", err
		}
		for _, k := range kws {
			letters = append(letters, byte('a'+slicesIndex(kw, k)))
		}
	}
	return normInfo(string(letters)), nil
}
