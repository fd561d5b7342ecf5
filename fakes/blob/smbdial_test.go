package blob

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudsoda/go-smb2"
)

// A panic inside go-smb2 while setting up a session fails that dial with
// an error instead of the process; it is not retried.
func TestDialTurnsALibraryPanicIntoAnError(t *testing.T) {
	calls := 0
	s := &smbStore{addr: "127.0.0.1:1", dialSession: func(context.Context, string) (*smb2.Session, error) {
		calls++
		var p *struct{ x int }
		_ = p.x // a nil dereference, as the library's once was
		return nil, nil
	}}
	if _, err := s.dial(context.Background()); !errors.Is(err, errLibraryPanic) || calls != 1 {
		t.Fatalf("dial that panics: %v after %d calls, want errLibraryPanic after 1", err, calls)
	}
}

// go-smb2's NTLMInitiator holds the exchange in progress, so session
// set-ups must never share one (TestSMBConcurrentStreams shows what
// sharing does against a real smbd).
func TestEveryDialHasItsOwnInitiator(t *testing.T) {
	s := &smbStore{user: "u", password: "p", credits: 256}
	a, b := s.newDialer(), s.newDialer()
	ia, ok := a.Initiator.(*smb2.NTLMInitiator)
	if !ok || ia.User != "u" || ia.Password != "p" || a.MaxCreditBalance != 256 {
		t.Fatalf("dialer: %+v", a)
	}
	if a.Initiator == b.Initiator {
		t.Fatal("two dials share one NTLM initiator")
	}
}
