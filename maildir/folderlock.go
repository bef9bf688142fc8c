package maildir

import (
	"context"
	"os"
	"path/filepath"
)

// LockFolder takes the dovecot-uidlist lock of the Maildir folder at dir
// (the directory holding cur/, new/ and tmp/): the dot-lock under which
// this package and Dovecot write the folder's dovecot-uidlist,
// dovecot-keywords and index files, which change in place. A tool that
// reads those files from outside a Store (a backup) holds it so that it
// sees one consistent version of all of them. hostname is the one the
// Store was given (Options.Hostname), so that the Store breaks the lock
// at once if the holder dies. unlock releases it.
func LockFolder(ctx context.Context, dir, hostname string) (unlock func() error, err error) {
	l, err := acquireDotlock(ctx, filepath.Join(dir, uidlistName), os.Getpid(), sanitizeHost(hostname))
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
