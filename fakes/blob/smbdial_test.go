package blob

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudsoda/go-smb2"
)

// go-smb2 can panic while setting up a session (a nil NTLM session in
// Sum): a dial turns that into an error and tries again on a fresh
// connection, a bounded number of times.
func TestDialSurvivesALibraryPanic(t *testing.T) {
	calls := 0
	second := errors.New("refused on the second try")
	s := &smbStore{addr: "127.0.0.1:1", dialSession: func(context.Context, string) (*smb2.Session, error) {
		calls++
		if calls == 1 {
			var p *struct{ x int }
			_ = p.x // the library's nil dereference
		}
		return nil, second
	}}
	if _, err := s.dial(context.Background()); !errors.Is(err, second) || calls != 2 {
		t.Fatalf("dial after a panic: %v after %d calls, want the second try's error", err, calls)
	}
	calls = 0
	s.dialSession = func(context.Context, string) (*smb2.Session, error) { calls++; panic("always") }
	if _, err := s.dial(context.Background()); !errors.Is(err, errLibraryPanic) || calls != dialAttempts {
		t.Fatalf("dial that always panics: %v after %d calls", err, calls)
	}
}
