package lb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every Azure figure appears in the rendered HAProxy settings, with
// Azure's defaults when nothing is set.
func TestAzureHAProxyConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		want []string
		not  []string
	}{
		{AzureLB, []string{
			"mode tcp", "accept-proxy", "balance roundrobin",
			"option httpchk GET /api/octopusservernodes/ping",
			"http-check expect status 200\n",
			"default-server inter 5s fall 1 rise 1\n",    // probe 5 s, probeThreshold 1
			"timeout check 30s",                          // probe timeout
			"timeout client 900s", "timeout server 900s", // above the 4 min idle timeout: the relay's drop is the silent one
		}, []string{"shutdown-sessions", "cookie ", "rstatus"}},
		{AzureAppGW, []string{
			"mode http", "balance roundrobin",
			"http-check expect rstatus ^[23][0-9][0-9]$", // healthy 200–399
			"default-server inter 30s fall 3 rise 1\n",   // 30 s × 3
			"timeout check 30s",
		}, []string{"shutdown-sessions", "accept-proxy", "cookie "}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			o := configOptions(t, tc.kind)
			cfg := haproxyConfig(o)
			for _, w := range tc.want {
				if !strings.Contains(cfg, w) {
					t.Errorf("config lacks %q:\n%s", w, cfg)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(cfg, w) {
					t.Errorf("config has %q:\n%s", w, cfg)
				}
			}
			checkHAProxyConfig(t, o.Dir, cfg)
		})
	}
}

func TestAzureHAProxyConfigTuned(t *testing.T) {
	o := configOptions(t, AzureLB)
	o.Azure = Azure{ProbeInterval: 15 * time.Second, ProbeThreshold: 2, ProbeTimeout: 10 * time.Second, IdleTimeout: 30 * time.Minute, Affinity: AffinityClientIP}
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg := haproxyConfig(o)
	for _, w := range []string{"balance source", "default-server inter 15s fall 2 rise 2", "timeout check 10s", "timeout client 1860s"} {
		if !strings.Contains(cfg, w) {
			t.Errorf("config lacks %q:\n%s", w, cfg)
		}
	}
	checkHAProxyConfig(t, o.Dir, cfg)

	o = configOptions(t, AzureAppGW)
	o.Azure = Azure{Affinity: AffinityCookie, RequestTimeout: 120 * time.Second}
	if o, err = o.withDefaults(); err != nil {
		t.Fatal(err)
	}
	cfg = haproxyConfig(o)
	for _, w := range []string{"cookie ApplicationGatewayAffinity insert indirect nocache", "server Node1 127.0.0.11:8080 check cookie Node1", "timeout server 900s"} {
		if !strings.Contains(cfg, w) {
			t.Errorf("config lacks %q:\n%s", w, cfg)
		}
	}
	checkHAProxyConfig(t, o.Dir, cfg)
}

func TestAzureDefaultsAndValidation(t *testing.T) {
	lbd, gw := AzureDefaults(AzureLB), AzureDefaults(AzureAppGW)
	if lbd.ProbeInterval != 5*time.Second || lbd.ProbeTimeout != 30*time.Second || lbd.IdleTimeout != 4*time.Minute || lbd.ProbeThreshold != 1 {
		t.Errorf("azure-lb defaults %+v", lbd)
	}
	if gw.ProbeInterval != 30*time.Second || gw.ProbeThreshold != 3 || gw.ProbeTimeout != 30*time.Second || gw.RequestTimeout != 20*time.Second ||
		gw.DrainTimeout != 30*time.Second || gw.WAFFileUploadLimit != 100<<20 || gw.WAFRequestBodyLimit != 128<<10 {
		t.Errorf("azure-appgw defaults %+v", gw)
	}
	if gw.ProbeBound() != 90*time.Second {
		t.Errorf("appgw probe bound %v, want 90s", gw.ProbeBound())
	}
	for _, tc := range []struct {
		kind Kind
		a    Azure
		want string
	}{
		{AzureLB, Azure{ProbeInterval: time.Second}, "5s minimum"},
		{AzureLB, Azure{IdleTimeout: time.Minute}, "4–100 min"},
		{AzureLB, Azure{Affinity: AffinityCookie}, "client IP"},
		{AzureLB, Azure{WAF: true}, "no WAF"},
		{AzureAppGW, Azure{Affinity: AffinityClientIP}, "ApplicationGatewayAffinity"},
	} {
		o := configOptions(t, HAProxy)
		o.Kind, o.Azure = tc.kind, tc.a
		if _, err := o.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: err %v, want %q", tc.kind, tc.a, err, tc.want)
		}
	}
	o := configOptions(t, HAProxy)
	o.Kind, o.Azure = AzureLB, Azure{ProbeInterval: time.Second, IdleTimeout: time.Second, Scaled: true}
	if _, err := o.withDefaults(); err != nil {
		t.Errorf("scaled figures refused: %v", err)
	}
}

// startAzure starts an Azure kind in front of nodes with scaled figures.
func startAzure(t *testing.T, kind Kind, a Azure, nodes []*fakeNode) Balancer {
	t.Helper()
	requireKind(t, HAProxy)
	o := testOptions(t, kind, nodes)
	a.Scaled = true
	if a.ProbeInterval == 0 {
		a.ProbeInterval = testInterval
	}
	o.Azure = a
	return startLB(t, o)
}

// An idle flow through azure-lb is dropped silently: no FIN or RST, the
// next request is written without error and never answered. A flow used
// within the idle timeout keeps working.
func TestAzureLBIdleDropIsSilent(t *testing.T) {
	nodes := startFakeNodes(t, 1)
	b := startAzure(t, AzureLB, Azure{IdleTimeout: 700 * time.Millisecond}, nodes)
	c, err := net.Dial("tcp", strings.TrimPrefix(b.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func() (*http.Response, error) {
		if _, err := io.WriteString(c, "GET /api HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	for i := 0; i < 3; i++ { // within the idle timeout: the flow lives
		if _, err := get(); err != nil {
			t.Fatalf("request %d on a busy flow: %v", i, err)
		}
		time.Sleep(200 * time.Millisecond) // the client's think time, below the idle timeout
	}
	time.Sleep(1200 * time.Millisecond) // idle past the 700 ms idle timeout: the fault under test
	_, err = get()
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("after the idle timeout the next request got %v; want a read timeout (a silent drop: no answer, no FIN, no RST)", err)
	}
}

// azure-appgw: an upload that outlasts the request timeout gets 504 naming
// the setting; a quick one passes; with WAF on, a file upload above the
// limit gets 413 naming it, declared or chunked.
func TestAzureAppGWTimeoutAndWAF(t *testing.T) {
	nodes := startFakeNodes(t, 1)
	b := startAzure(t, AzureAppGW, Azure{RequestTimeout: time.Second, WAF: true, WAFFileUploadLimit: 1 << 20, WAFRequestBodyLimit: 16 << 20}, nodes)
	post := func(body io.Reader, size int64, multipartFile bool) (int, string) {
		ct := "application/octet-stream"
		if multipartFile {
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			ct = mw.FormDataContentType()
			src := body
			go func() {
				fw, _ := mw.CreateFormFile("file", "pkg.1.0.0.zip")
				_, err := io.Copy(fw, src)
				if err == nil {
					err = mw.Close()
				}
				pw.CloseWithError(err)
			}()
			body, size = pr, -1
		}
		req, _ := http.NewRequest(http.MethodPost, b.URL()+"/api/Spaces-1/packages/raw", body)
		req.ContentLength = size
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(msg)
	}
	if code, msg := post(strings.NewReader("small"), 5, false); code != http.StatusOK {
		t.Fatalf("small body: %d %s", code, msg)
	}
	if code, msg := post(&slowBody{left: 64 << 10 * 10}, -1, true); code != http.StatusOK {
		t.Fatalf("quick file upload under the limit: %d %s", code, msg)
	}
	if code, msg := post(&slowBody{left: 64 << 10 * 100}, -1, false); code != http.StatusGatewayTimeout || !strings.Contains(msg, "lb.azure.requestTimeout") {
		t.Fatalf("a 2 s upload behind a 1 s request timeout: %d %q; want 504 naming lb.azure.requestTimeout", code, msg)
	}
	if code, msg := post(strings.NewReader(strings.Repeat("x", 17<<20)), 17<<20, false); code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "wafRequestBodyLimit") {
		t.Fatalf("declared body above the limit: %d %q", code, msg)
	}
	if code, msg := post(strings.NewReader(strings.Repeat("x", 2<<20)), -1, true); code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "wafFileUploadLimit") {
		t.Fatalf("chunked file upload above the limit: %d %q", code, msg)
	}
}
