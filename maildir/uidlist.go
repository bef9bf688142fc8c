package maildir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// uidlistName is Dovecot's UID map file in each folder.
const uidlistName = "dovecot-uidlist"

// maxUIDListLine bounds one line of dovecot-uidlist.
const maxUIDListLine = 8192

// uidlist is the content of a dovecot-uidlist file, version 3:
//
//	3 V<uidvalidity> N<nextuid> G<guid> [<key><value> ...]
//	<uid> [<key><value> ...] :<base name>
//
// Version 1 files ("1 <uidvalidity> <nextuid>", "<uid> <base name>")
// are read too; they are rewritten as version 3.
type uidlist struct {
	uidValidity uint32
	nextUID     uint32
	guid        string
	// hdrExtra keeps header fields other than V, N and G verbatim.
	hdrExtra []string
	recs     []uidRec // ascending UID
}

type uidRec struct {
	uid uint32
	key string
	// ext keeps the record's extension fields ("W1234 S1200") verbatim.
	ext string
}

var errBadUIDList = errors.New("maildir: corrupt dovecot-uidlist")

// parseUIDList parses data. On a malformed line it returns what was read
// before it together with errBadUIDList, so a caller rebuilding the file
// keeps as many UIDs as possible. A nil *uidlist means no usable header.
func parseUIDList(data []byte) (*uidlist, error) {
	line, rest, _ := bytes.Cut(data, []byte{'\n'})
	if len(line) > maxUIDListLine {
		return nil, errBadUIDList
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return nil, errBadUIDList
	}
	u := &uidlist{}
	version := f[0]
	switch version {
	case "1":
		if len(f) != 3 {
			return nil, errBadUIDList
		}
		v, err1 := strconv.ParseUint(f[1], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, errBadUIDList
		}
		u.uidValidity, u.nextUID = uint32(v), uint32(n)
	case "3":
		for _, fld := range f[1:] {
			val := fld[1:]
			switch fld[0] {
			case 'V':
				v, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					return nil, errBadUIDList
				}
				u.uidValidity = uint32(v)
			case 'N':
				n, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					return nil, errBadUIDList
				}
				u.nextUID = uint32(n)
			case 'G':
				u.guid = val
			default:
				u.hdrExtra = append(u.hdrExtra, fld)
			}
		}
	default:
		return nil, errBadUIDList
	}
	if u.uidValidity == 0 {
		return nil, errBadUIDList
	}
	if u.nextUID == 0 {
		u.nextUID = 1
	}
	var last uint32
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		if len(line) > maxUIDListLine {
			return u, errBadUIDList
		}
		rec, ok := parseUIDRec(string(line), version == "3")
		if !ok || rec.uid <= last {
			return u, errBadUIDList
		}
		last = rec.uid
		u.recs = append(u.recs, rec)
		if rec.uid >= u.nextUID {
			if rec.uid == ^uint32(0) {
				return u, errBadUIDList
			}
			u.nextUID = rec.uid + 1
		}
	}
	return u, nil
}

func parseUIDRec(line string, v3 bool) (uidRec, bool) {
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return uidRec{}, false
	}
	n, err := strconv.ParseUint(line[:sp], 10, 32)
	if err != nil || n == 0 {
		return uidRec{}, false
	}
	rec := uidRec{uid: uint32(n)}
	rest := line[sp+1:]
	if !v3 {
		rec.key = rest
	} else {
		c := strings.IndexByte(rest, ':')
		if c < 0 {
			return uidRec{}, false
		}
		rec.ext = strings.TrimSpace(rest[:c])
		rec.key = rest[c+1:]
	}
	if !validBase(rec.key) || strings.ContainsRune(rec.key, ':') {
		return uidRec{}, false
	}
	return rec, true
}

// marshal writes the file in version 3.
func (u *uidlist) marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(u.recs)*64)
	b.WriteString("3 V")
	b.WriteString(strconv.FormatUint(uint64(u.uidValidity), 10))
	b.WriteString(" N")
	b.WriteString(strconv.FormatUint(uint64(u.nextUID), 10))
	if u.guid != "" {
		b.WriteString(" G")
		b.WriteString(u.guid)
	}
	for _, x := range u.hdrExtra {
		b.WriteByte(' ')
		b.WriteString(x)
	}
	b.WriteByte('\n')
	for _, r := range u.recs {
		appendUIDRec(&b, r)
	}
	return b.Bytes()
}

func appendUIDRec(b *bytes.Buffer, r uidRec) {
	b.Write(appendUIDRecBytes(nil, r))
}

func appendUIDRecBytes(b []byte, r uidRec) []byte {
	b = strconv.AppendUint(b, uint64(r.uid), 10)
	b = append(b, ' ')
	if r.ext != "" {
		b = append(b, r.ext...)
		b = append(b, ' ')
	}
	b = append(b, ':')
	b = append(b, r.key...)
	return append(b, '\n')
}

// newGUID returns a 128-bit mailbox GUID in hex, as Dovecot's G field.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
