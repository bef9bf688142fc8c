package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Maildir is one user's mail: INBOX at the root and Maildir++ subfolders.
// Handles from the same Store share state; each must be closed.
type Maildir struct {
	store  *Store
	u      *userState
	path   string
	closed atomic.Bool
}

// FolderInfo describes one folder in a listing.
type FolderInfo struct {
	// Name is the folder's name in UTF-8 with Delimiter between levels;
	// "INBOX" for the root.
	Name string
	// SpecialUse is the folder's RFC 6154 attribute, empty if none.
	SpecialUse SpecialUse
	// Subscribed reports whether the name is in the subscriptions file.
	Subscribed bool
	// HasChildren reports whether a folder exists below this one.
	HasChildren bool
	// NonExistent marks a level that exists only as the parent of a
	// folder (".a.b" without ".a"); it holds no messages.
	NonExistent bool
}

// Path returns the Maildir's directory.
func (m *Maildir) Path() string { return m.path }

// Close releases the handle; the last one saves the folder indexes.
func (m *Maildir) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.store.release(m.u)
	return nil
}

func (m *Maildir) check() error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}

// folderNames returns the names of the folders on disk, without INBOX.
func (m *Maildir) folderNames() ([]string, error) {
	d, err := os.Open(m.path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e == trashedDir {
			continue
		}
		name, ok := folderFromDirName(e)
		if !ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(m.path, e)); err != nil || !st.IsDir() {
			continue
		}
		out = append(out, name)
	}
	return out, nil
}

// Folders lists INBOX and every folder, sorted by name, parents before
// children; missing parent levels are listed as NonExistent.
func (m *Maildir) Folders(ctx context.Context) ([]FolderInfo, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	names, err := m.folderNames()
	if err != nil {
		return nil, err
	}
	subs, err := m.Subscriptions(ctx)
	if err != nil {
		return nil, err
	}
	subSet := make(map[string]bool, len(subs))
	for _, s := range subs {
		subSet[s] = true
	}
	exists := map[string]bool{"INBOX": true}
	all := map[string]bool{"INBOX": true}
	for _, n := range names {
		exists[n] = true
		all[n] = true
		for i := strings.LastIndexByte(n, Delimiter); i > 0; i = strings.LastIndexByte(n[:i], Delimiter) {
			all[n[:i]] = true
		}
	}
	special := map[string]SpecialUse{}
	for _, sf := range m.store.opts.SpecialFolders {
		special[sf.Name] = sf.Use
	}
	// The user's own, given at CREATE, over the configured ones.
	own, err := m.readSpecialUse()
	if err != nil {
		return nil, err
	}
	for n, use := range own {
		special[n] = use
	}
	var out []FolderInfo
	for n := range all {
		fi := FolderInfo{Name: n, SpecialUse: special[n], Subscribed: subSet[n], NonExistent: !exists[n]}
		out = append(out, fi)
	}
	slices.SortFunc(out, func(a, b FolderInfo) int {
		switch {
		case a.Name == "INBOX":
			return -1
		case b.Name == "INBOX":
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := range out {
		if i+1 < len(out) && strings.HasPrefix(out[i+1].Name, out[i].Name+string(Delimiter)) {
			out[i].HasChildren = true
		}
	}
	// "INBOX.x" folders are INBOX's children too.
	if exists["INBOX"] {
		for _, n := range names {
			if strings.HasPrefix(n, "INBOX"+string(Delimiter)) {
				out[0].HasChildren = true
			}
		}
	}
	return out, nil
}

// CreateFolder creates the folder name (with Maildir++'s empty
// "maildirfolder" marker). Missing parents are not created, as in
// Dovecot's layout; ErrFolderExists if it exists.
func (m *Maildir) CreateFolder(ctx context.Context, name string) error {
	if err := m.check(); err != nil {
		return err
	}
	name, err := CheckName(name)
	if err != nil {
		return err
	}
	if name == "INBOX" {
		return fmt.Errorf("%w: INBOX", ErrFolderExists)
	}
	if err := m.store.checkDepth(name); err != nil {
		return err
	}
	dir := folderDir(m.path, name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%w: %s", ErrFolderExists, name)
	}
	return m.store.withFolderRoom(&m.u.count, m.path, func() error {
		if err := m.store.mkdirDurable(dir); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
			return err
		}
		if err := chownLike(filepath.Join(dir, "maildirfolder")); err != nil {
			return err
		}
		return fsyncDir(dir)
	})
}

// DeleteFolder removes the folder and its messages. Its children are
// kept (they stay reachable by name). INBOX cannot be deleted.
func (m *Maildir) DeleteFolder(ctx context.Context, name string) error {
	if err := m.check(); err != nil {
		return err
	}
	name, err := CheckName(name)
	if err != nil {
		return err
	}
	if name == "INBOX" {
		return ErrInbox
	}
	dir := folderDir(m.path, name)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoFolder, name)
	}
	trash := filepath.Join(m.path, trashedDir)
	if err := os.RemoveAll(trash); err != nil {
		return err
	}
	// Renaming first makes the deletion atomic for every reader; the
	// removal of the files can then fail or crash halfway harmlessly.
	if err := os.Rename(dir, trash); err != nil {
		return err
	}
	m.u.forget(func(d string) bool { return d == dir })
	if err := fsyncDir(m.path); err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		m.store.log.Warn("maildir: removing deleted folder", "path", trash, "err", err)
	}
	if err := m.u.dropSpecialUse(ctx, name); err != nil {
		return err
	}
	m.recalcQuotaIfPresent(ctx)
	return nil
}

// recalcQuotaIfPresent recounts maildirsize after a bulk change.
func (m *Maildir) recalcQuotaIfPresent(ctx context.Context) {
	u, _, exists, _ := readQuota(m.path)
	if !exists {
		return
	}
	if _, err := m.store.recalcQuota(ctx, m.path, u.Limit); err != nil {
		m.store.log.Warn("maildir: recalculating maildirsize", "path", m.path, "err", err)
	}
}

// RenameFolder renames the folder and every child below it; the
// subscriptions follow. Renaming INBOX is refused with ErrInbox.
func (m *Maildir) RenameFolder(ctx context.Context, oldName, newName string) error {
	if err := m.check(); err != nil {
		return err
	}
	oldName, err := CheckName(oldName)
	if err != nil {
		return err
	}
	newName, err = CheckName(newName)
	if err != nil {
		return err
	}
	if oldName == "INBOX" || newName == "INBOX" {
		return ErrInbox
	}
	if oldName == newName || strings.HasPrefix(newName, oldName+string(Delimiter)) {
		return &NameError{Name: newName, Reason: "cannot rename a folder into itself"}
	}
	names, err := m.folderNames()
	if err != nil {
		return err
	}
	var moves [][2]string
	for _, n := range names {
		var to string
		switch {
		case n == oldName:
			to = newName
		case strings.HasPrefix(n, oldName+string(Delimiter)):
			to = newName + n[len(oldName):]
		default:
			continue
		}
		if _, err := CheckName(to); err != nil {
			return err
		}
		if err := m.store.checkDepth(to); err != nil {
			return err
		}
		if slices.Contains(names, to) {
			return fmt.Errorf("%w: %s", ErrFolderExists, to)
		}
		moves = append(moves, [2]string{n, to})
	}
	if len(moves) == 0 {
		return fmt.Errorf("%w: %s", ErrNoFolder, oldName)
	}
	moved := map[string]bool{}
	for _, mv := range moves {
		from, to := folderDir(m.path, mv[0]), folderDir(m.path, mv[1])
		if err := os.Rename(from, to); err != nil {
			return err
		}
		moved[from] = true
	}
	m.u.forget(func(d string) bool { return moved[d] })
	if err := fsyncDir(m.path); err != nil {
		return err
	}
	if err := m.u.renameSpecialUse(ctx, oldName, newName); err != nil {
		return err
	}
	return m.u.renameSubscriptions(ctx, oldName, newName)
}

// Subscribe adds (subscribed true) or removes name from the
// subscriptions file. The name need not exist (RFC 3501 §6.3.6).
func (m *Maildir) Subscribe(ctx context.Context, name string, subscribed bool) error {
	if err := m.check(); err != nil {
		return err
	}
	name, err := CheckName(name)
	if err != nil {
		return err
	}
	if !subscribed {
		return m.u.subscribe(ctx, name, false)
	}
	full := false
	err = m.u.editSubscriptions(ctx, func(cur []string) ([]string, bool) {
		switch {
		case slices.Contains(cur, name):
			return cur, false
		case len(cur) >= maxSubscriptions:
			full = true
			return cur, false
		}
		return append(cur, name), true
	})
	if err == nil && full {
		err = fmt.Errorf("%w: %d", ErrTooManySubscriptions, maxSubscriptions)
	}
	return err
}

// Subscriptions returns the subscribed names in file order.
func (m *Maildir) Subscriptions(ctx context.Context) ([]string, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	data, err := readLimited(filepath.Join(m.path, subscriptionsName), maxSubscriptionsSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseSubscriptions(data), nil
}

// editSubscriptions applies edit to the subscription list under
// "subscriptions.lock", as Dovecot does, and writes it back if changed.
func (u *userState) editSubscriptions(ctx context.Context, edit func([]string) ([]string, bool)) error {
	u.subsMu.Lock()
	defer u.subsMu.Unlock()
	p := filepath.Join(u.path, subscriptionsName)
	lock, err := acquireDotlock(ctx, p, u.s.pid, u.s.host)
	if err != nil {
		return err
	}
	defer lock.release()
	var cur []string
	if data, err := readLimited(p, maxSubscriptionsSize); err == nil {
		cur = parseSubscriptions(data)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	next, changed := edit(cur)
	if !changed {
		return nil
	}
	return writeFileAtomic(p, marshalSubscriptions(next), true)
}

func (u *userState) subscribe(ctx context.Context, name string, on bool) error {
	return u.editSubscriptions(ctx, func(cur []string) ([]string, bool) {
		i := slices.Index(cur, name)
		switch {
		case on && i < 0:
			return append(cur, name), true
		case !on && i >= 0:
			return slices.Delete(cur, i, i+1), true
		}
		return cur, false
	})
}

func (u *userState) renameSubscriptions(ctx context.Context, oldName, newName string) error {
	return u.editSubscriptions(ctx, func(cur []string) ([]string, bool) {
		changed := false
		for i, n := range cur {
			switch {
			case n == oldName:
				cur[i], changed = newName, true
			case strings.HasPrefix(n, oldName+string(Delimiter)):
				cur[i], changed = newName+n[len(oldName):], true
			}
		}
		return cur, changed
	})
}

// Folder returns the folder name ("INBOX", case-insensitive, for the
// root), or ErrNoFolder. The Folder is valid until the Maildir is closed.
func (m *Maildir) Folder(ctx context.Context, name string) (*Folder, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	name, err := CheckName(name)
	if err != nil {
		return nil, err
	}
	dir := folderDir(m.path, name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNoFolder, name)
	}
	return &Folder{m: m, st: m.u.folder(dir, name), name: name}, nil
}

// Quota returns the usage recorded in maildirsize, recalculating it (and
// creating the file) when it is missing, corrupt or too long, as
// Maildir++ prescribes.
func (m *Maildir) Quota(ctx context.Context) (QuotaUsage, error) {
	if err := m.check(); err != nil {
		return QuotaUsage{}, err
	}
	u, _, err := m.store.usage(ctx, m.path, nil, true)
	return u, err
}

// SetQuota records limit in maildirsize (recalculating the usage). A zero
// Quota removes the limit.
func (m *Maildir) SetQuota(ctx context.Context, limit Quota) error {
	if err := m.check(); err != nil {
		return err
	}
	_, err := m.store.recalcQuota(ctx, m.path, limit)
	return err
}

// maxSubscriptionsSize bounds what is read of a subscriptions file.
const maxSubscriptionsSize = 4 << 20

// readLimited reads at most limit bytes of the file at p.
func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
