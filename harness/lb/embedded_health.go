package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// healthChecker runs HAProxy-style active checks for the embedded proxy:
// servers start UP; Fall consecutive failures take one DOWN and Rise
// consecutive passes bring it back. With DrainNOLB a 418 is a conditional
// pass (HAProxy's L7OKC): the server goes NOLB at once, without Fall.
// Unlike HAProxy, which starts a server one failed check from DOWN, servers
// here start with a full counter, so Fall always applies.
type healthChecker struct {
	o      Options
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	servers map[string]*checkState
}

// checkState is one server's health and administrative state.
type checkState struct {
	down   bool  // operationally DOWN (checks)
	nolb   bool  // last pass was conditional (418 with DrainNOLB)
	admin  State // "" (ready), StateDrain or StateMaint, set by an operator
	passes int   // consecutive passes
	fails  int   // consecutive failures
	check  string
	detail string
}

func newHealthChecker(o Options, log *slog.Logger) *healthChecker {
	timeout := o.Interval // as HAProxy without `timeout check`
	tr := &http.Transport{
		Proxy: nil,
		// A new connection per check, as HAProxy does, so a dead or frozen
		// node cannot hide behind a pooled connection.
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}
	hc := &healthChecker{
		o:       o,
		client:  &http.Client{Transport: tr, Timeout: timeout},
		log:     log,
		servers: map[string]*checkState{},
	}
	for _, be := range o.Backends {
		hc.servers[be.Name] = &checkState{passes: o.Rise, check: "INI"}
	}
	return hc
}

// run checks every backend every Interval until ctx ends.
func (hc *healthChecker) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, be := range hc.o.Backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(hc.o.Interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				code, check, detail := hc.probe(ctx, be.Addr)
				if ctx.Err() != nil {
					return
				}
				hc.record(be.Name, code, check, detail)
			}
		}()
	}
	wg.Wait()
	hc.client.CloseIdleConnections()
}

// probe performs one check and returns the HTTP status (0 if none) and a
// HAProxy-style check status.
func (hc *healthChecker) probe(ctx context.Context, addr string) (code int, check, detail string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.o.HealthPath, nil)
	if err != nil {
		return 0, "L7RSP", err.Error()
	}
	resp, err := hc.client.Do(req)
	if err != nil {
		var ne net.Error
		var op *net.OpError
		switch {
		case errors.As(err, &op) && op.Op == "dial":
			return 0, "L4CON", err.Error()
		case errors.As(err, &ne) && ne.Timeout():
			return 0, "L7TOUT", err.Error()
		}
		return 0, "L7RSP", err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, "", resp.Status
}

// record applies one check result to a server's state machine.
func (hc *healthChecker) record(name string, code int, check, detail string) {
	pass, cond := code == http.StatusOK, false
	if hc.o.Drain == DrainNOLB && code == http.StatusTeapot {
		pass, cond = true, true
	}
	if code != 0 {
		switch {
		case cond:
			check = "L7OKC/" + strconv.Itoa(code)
		case pass:
			check = "L7OK/" + strconv.Itoa(code)
		default:
			check = "L7STS/" + strconv.Itoa(code)
		}
	}
	hc.mu.Lock()
	s := hc.servers[name]
	before := s.state()
	s.check, s.detail = check, detail
	if pass {
		s.fails = 0
		s.passes++
		if s.down && s.passes >= hc.o.Rise {
			s.down = false
		}
		s.nolb = cond
	} else {
		s.passes = 0
		s.fails++
		if !s.down && s.fails >= hc.o.Fall {
			s.down, s.nolb = true, false
		}
	}
	after := s.state()
	hc.mu.Unlock()
	if after != before {
		hc.log.Info("server state changed", "server", name, "from", before, "to", after, "check", check, "detail", detail)
	}
}

// state is the HAProxy-equivalent state: admin first, then health.
func (s *checkState) state() State {
	switch {
	case s.admin == StateMaint:
		return StateMaint
	case s.down:
		return StateDown
	case s.admin == StateDrain:
		return StateDrain
	case s.nolb:
		return StateNOLB
	}
	return StateUp
}

// eligible says whether a server takes new sessions and sticky ones.
func (hc *healthChecker) eligible(name string) (fresh, sticky bool) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	s, ok := hc.servers[name]
	if !ok {
		return false, false
	}
	switch s.state() {
	case StateUp:
		return true, true
	case StateNOLB, StateDrain:
		return false, true
	}
	return false, false
}

func (hc *healthChecker) states() []ServerState {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	out := make([]ServerState, 0, len(hc.o.Backends))
	for _, be := range hc.o.Backends {
		s := hc.servers[be.Name]
		detail := s.detail
		if !s.down && s.fails > 0 {
			detail = fmt.Sprintf("failing %d/%d; %s", s.fails, hc.o.Fall, detail)
		} else if s.down && s.passes > 0 {
			detail = fmt.Sprintf("recovering %d/%d; %s", s.passes, hc.o.Rise, detail)
		}
		out = append(out, ServerState{Name: be.Name, State: s.state(), Check: s.check, Detail: detail})
	}
	return out
}

// setAdmin sets an operator state: UP (ready), DRAIN or MAINT (DOWN = MAINT).
func (hc *healthChecker) setAdmin(name string, st State) error {
	var admin State
	switch st {
	case StateUp:
	case StateDrain:
		admin = StateDrain
	case StateMaint, StateDown:
		admin = StateMaint
	default:
		return fmt.Errorf("embedded: cannot set a server to %s (want UP, DRAIN, MAINT or DOWN)", st)
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	s, ok := hc.servers[name]
	if !ok {
		return fmt.Errorf("embedded set server state: no backend named %q", name)
	}
	s.admin = admin
	return nil
}
