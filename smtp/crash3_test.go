package smtp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// TestCrashThreeRecipients kills the MX (TestCrashChild) with SIGKILL at
// random moments while four connections send messages to three local
// users each, 10 times, and checks that every message answered 250 is in
// all three Maildirs exactly as sent, and that no file in any of them is
// partial.
func TestCrashThreeRecipients(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child process")
	}
	if testing.Short() {
		t.Skip("kills a server 10 times")
	}
	dir := t.TempDir()
	users := []string{"u1@local.example", "u2@local.example", "u3@local.example"}
	boxes := crashDirectory(t, dir, users...)

	var mu sync.Mutex
	acked := map[string]string{} // Message-ID answered 250 → SHA-256 of its body
	seq := 0
	for round := range 10 {
		cmd, addr := startCrashChild(t, dir, round)
		killAt := 1 + rand.IntN(8)
		var once sync.Once
		n := 0
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 15 {
					mu.Lock()
					seq++
					id := fmt.Sprintf("<crash3.%d.%d@far.example>", round, seq)
					mu.Unlock()
					body := strings.Repeat(fmt.Sprintf("%s line of the body\r\n", id), 200)
					sum := sha256.Sum256([]byte(body))
					msg := "Message-ID: " + id + "\r\nX-Smtpload-Body-SHA256: " + hex.EncodeToString(sum[:]) + "\r\nSubject: crash\r\n\r\n" + body
					c, err := gosmtp.Dial(addr)
					if err != nil {
						return
					}
					c.CommandTimeout, c.SubmissionTimeout = 20*time.Second, 20*time.Second
					err = c.SendMail("load@far.example", users, strings.NewReader(msg))
					c.Close()
					if err != nil {
						return
					}
					mu.Lock()
					acked[id] = hex.EncodeToString(sum[:])
					n++
					kill := n == killAt
					mu.Unlock()
					if kill {
						once.Do(func() { cmd.Process.Kill() })
					}
				}
			}()
		}
		wg.Wait()
		cmd.Process.Kill()
		cmd.Wait()
	}

	for i, box := range boxes {
		found := crashStored(t, box, acked)
		for id := range acked {
			if !found[id] {
				t.Errorf("%s was acknowledged with 250 but is not in %s's Maildir", id, users[i])
			}
		}
	}
	t.Logf("%d messages acknowledged to three recipients each, over 10 kills", len(acked))
	if len(acked) < 10 {
		t.Fatalf("only %d acknowledgements: the load did not run", len(acked))
	}
}
