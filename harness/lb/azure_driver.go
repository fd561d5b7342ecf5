package lb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// azureLB is an Azure kind: a real HAProxy on an internal address of the
// listen host, and octoha's front on Listen (idleRelay for azure-lb,
// gatewayFront for azure-appgw) for what HAProxy cannot produce.
type azureLB struct {
	o  Options // Listen is the front's
	hp *haproxyLB

	mu      sync.Mutex
	stop    func(context.Context) error // the running front's Stop; nil when stopped
	logFile *os.File
	drains  map[string]*time.Timer // appgw: pending session shutdowns after the drain timeout
}

var (
	_ Balancer   = (*azureLB)(nil)
	_ Controller = (*azureLB)(nil)
)

func newAzure(o Options) (*azureLB, error) {
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("lb: %s listen %q: %w", o.Kind, o.Listen, err)
	}
	inner, err := freeAddr(net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	io := o
	io.Listen = inner
	hp, err := newHAProxy(io)
	if err != nil {
		return nil, err
	}
	return &azureLB{o: o, hp: hp, drains: map[string]*time.Timer{}}, nil
}

func (z *azureLB) Kind() Kind                                        { return z.o.Kind }
func (z *azureLB) URL() string                                       { return "http://" + z.o.Listen }
func (z *azureLB) PID() int                                          { return z.hp.PID() }
func (z *azureLB) States(ctx context.Context) ([]ServerState, error) { return z.hp.States(ctx) }

// HAProxyListen is the internal address of the real HAProxy behind the front.
func (z *azureLB) HAProxyListen() string { return z.hp.o.Listen }

func (z *azureLB) Describe() string {
	a := z.o.Azure
	if z.o.Kind == AzureLB {
		return fmt.Sprintf("Azure Load Balancer (Standard) model: HAProxy %s mode tcp (real, %s) with an HTTP probe every %s, threshold %d, timeout %s, only 200 healthy, flows continue when probed down, affinity %s; silent idle drop after %s emulated by octoha's TCP relay",
			z.hp.version, z.hp.bin, cfgDuration(a.ProbeInterval), a.ProbeThreshold, cfgDuration(a.ProbeTimeout), a.Affinity, cfgDuration(a.IdleTimeout))
	}
	waf := "WAF off"
	if a.WAF {
		waf = fmt.Sprintf("WAF on: request body limit %d B, file upload limit %d B", a.WAFRequestBodyLimit, a.WAFFileUploadLimit)
	}
	return fmt.Sprintf("Application Gateway v2 model: HAProxy %s mode http (real, %s) probing every %s, timeout %s, unhealthy after %d, healthy 200-399, affinity %s, drain %s; backend request timeout %s and %s enforced by octoha's HTTP front",
		z.hp.version, z.hp.bin, cfgDuration(a.ProbeInterval), cfgDuration(a.ProbeTimeout), a.ProbeThreshold, a.Affinity, cfgDuration(a.DrainTimeout), cfgDuration(a.RequestTimeout), waf)
}

// Start starts HAProxy, then the front.
func (z *azureLB) Start(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.stop != nil {
		return fmt.Errorf("start %s: already running", z.o.Kind)
	}
	if err := z.hp.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", z.o.Kind, err)
	}
	var logw io.Writer = io.Discard
	f, err := openPrivateLog(filepath.Join(z.o.Dir, "front.log"))
	if err == nil {
		logw, z.logFile = f, f
	}
	if z.o.Log != nil {
		logw = io.MultiWriter(logw, z.o.Log)
	}
	log := slog.New(slog.NewTextHandler(logw, nil)).With("lb", string(z.o.Kind))
	var stop func(context.Context) error
	if z.o.Kind == AzureLB {
		stop, err = startIdleRelay(ctx, z.o.Listen, z.hp.o.Listen, z.o.Azure.IdleTimeout, log)
	} else {
		stop, err = startGatewayFront(ctx, z.o, z.hp.o.Listen, log)
	}
	if err != nil {
		_ = z.hp.Stop(context.Background())
		z.closeLog()
		return fmt.Errorf("start %s front on %s: %w", z.o.Kind, z.o.Listen, err)
	}
	z.stop = stop
	return nil
}

func (z *azureLB) closeLog() {
	if z.logFile != nil {
		z.logFile.Close()
		z.logFile = nil
	}
}

// Stop stops the front, then HAProxy.
func (z *azureLB) Stop(ctx context.Context) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	for name, t := range z.drains {
		t.Stop()
		delete(z.drains, name)
	}
	var errs []error
	if z.stop != nil {
		errs = append(errs, z.stop(ctx))
		z.stop = nil
	}
	errs = append(errs, z.hp.Stop(ctx))
	z.closeLog()
	return errors.Join(errs...)
}

// SetServerState passes to HAProxy. On azure-appgw, DRAIN is Application
// Gateway's connection draining: no new requests, and the server's open
// sessions are ended after the drain timeout.
func (z *azureLB) SetServerState(ctx context.Context, name string, state State) error {
	if err := z.hp.SetServerState(ctx, name, state); err != nil {
		return err
	}
	if z.o.Kind != AzureAppGW {
		return nil
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if t := z.drains[name]; t != nil {
		t.Stop()
		delete(z.drains, name)
	}
	if state != StateDrain {
		return nil
	}
	z.drains[name] = time.AfterFunc(z.o.Azure.DrainTimeout, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cmd := fmt.Sprintf("shutdown sessions server %s/%s", haproxyBackend, name)
		if out, err := runtimeCommand(cctx, z.hp.socket(), cmd); err != nil || strings.TrimSpace(out) != "" {
			slog.Warn("lb: drain timeout: could not end sessions", "server", name, "err", err, "reply", strings.TrimSpace(out))
		}
	})
	return nil
}
