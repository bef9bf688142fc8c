package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// specialUseName is the file in the Maildir root that holds the special
// uses (RFC 6154) given to folders at their creation (IMAP's
// CREATE-SPECIAL-USE): one "attribute TAB name" line each, names UTF-8
// with tabs and line ends escaped as in subscriptions. Options'
// SpecialFolders apply to every user besides.
const specialUseName = "mailagent-special-use"

// maxSpecialUseSize bounds what is read of the special-use file.
const maxSpecialUseSize = 1 << 20

// ErrSpecialUse is SetSpecialUse's error for an attribute a folder
// cannot be given: not one of RFC 6154's, or \All and \Flagged, which
// name views of other folders that Maildir does not keep.
var ErrSpecialUse = errors.New("maildir: special use not supported")

// SetSpecialUse gives the folder name the special use (RFC 6154)
// use, listed by Folders from then on; an empty use takes it away. The
// folder must exist.
func (m *Maildir) SetSpecialUse(ctx context.Context, name string, use SpecialUse) error {
	if err := m.check(); err != nil {
		return err
	}
	name, err := CheckName(name)
	if err != nil {
		return err
	}
	switch use {
	case "", SpecialArchive, SpecialDrafts, SpecialJunk, SpecialSent, SpecialTrash:
	default:
		return fmt.Errorf("%w: %s", ErrSpecialUse, use)
	}
	if _, err := m.Folder(ctx, name); err != nil {
		return err
	}
	return m.u.editSpecialUse(ctx, func(cur map[string]SpecialUse) bool {
		if cur[name] == use {
			return false
		}
		if use == "" {
			delete(cur, name)
		} else {
			cur[name] = use
		}
		return true
	})
}

// readSpecialUse returns the special uses given to this Maildir's
// folders.
func (m *Maildir) readSpecialUse() (map[string]SpecialUse, error) {
	data, err := readLimited(filepath.Join(m.path, specialUseName), maxSpecialUseSize)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]SpecialUse{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseSpecialUse(data), nil
}

func parseSpecialUse(data []byte) map[string]SpecialUse {
	out := map[string]SpecialUse{}
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		use, name, ok := strings.Cut(string(line), "\t")
		if !ok || !strings.HasPrefix(use, `\`) || len(out) >= maxSubscriptions {
			continue
		}
		out[tabUnescape(name)] = SpecialUse(use)
	}
	return out
}

func marshalSpecialUse(uses map[string]SpecialUse) []byte {
	var b bytes.Buffer
	for _, name := range sortedKeys(uses) {
		b.WriteString(string(uses[name]) + "\t" + tabEscape(name) + "\n")
	}
	return b.Bytes()
}

func sortedKeys(m map[string]SpecialUse) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// editSpecialUse applies edit to the special-use file under its dot
// lock and writes it back, durably, if edit reports a change.
func (u *userState) editSpecialUse(ctx context.Context, edit func(map[string]SpecialUse) bool) error {
	u.subsMu.Lock()
	defer u.subsMu.Unlock()
	p := filepath.Join(u.path, specialUseName)
	lock, err := acquireDotlock(ctx, p, u.s.pid, u.s.host)
	if err != nil {
		return err
	}
	defer lock.release()
	cur := map[string]SpecialUse{}
	if data, err := readLimited(p, maxSpecialUseSize); err == nil {
		cur = parseSpecialUse(data)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !edit(cur) {
		return nil
	}
	return writeFileAtomic(p, marshalSpecialUse(cur), true)
}

// renameSpecialUse moves the special uses of oldName and its children
// to their new names.
func (u *userState) renameSpecialUse(ctx context.Context, oldName, newName string) error {
	return u.editSpecialUse(ctx, func(cur map[string]SpecialUse) bool {
		changed := false
		for n, use := range cur {
			var to string
			switch {
			case n == oldName:
				to = newName
			case strings.HasPrefix(n, oldName+string(Delimiter)):
				to = newName + n[len(oldName):]
			default:
				continue
			}
			delete(cur, n)
			cur[to] = use
			changed = true
		}
		return changed
	})
}

// dropSpecialUse forgets the special use of a deleted folder.
func (u *userState) dropSpecialUse(ctx context.Context, name string) error {
	return u.editSpecialUse(ctx, func(cur map[string]SpecialUse) bool {
		if _, ok := cur[name]; !ok {
			return false
		}
		delete(cur, name)
		return true
	})
}
