package traffic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"sync"
	"time"

	"github.com/octoha/octoha/harness/history"
	"github.com/octoha/octoha/octopusapi"
)

// KindPushProbe is a user's permission-gated push: one small upload with
// IgnoreIfExists, answered 201/200 when the answering node lets the user
// push, 403 when it does not. Both answers are outcomes ok (the server
// answered as designed); the status says which.
const KindPushProbe = "push-probe"

// ProbePackage is the package the probes push.
const ProbePackage = "Octoha.PermissionProbe"

// SessionOptions configures PushSessions.
type SessionOptions struct {
	// URL is the load balancer's base URL; APIKey the user's key (never
	// recorded).
	URL, APIKey string
	SpaceID     string // default octopusapi.DefaultSpaceID
	// Sessions is how many users' sessions run at once, each one client
	// pushing every Interval.
	Sessions int
	Interval time.Duration
	// Cookies: each session keeps its cookies (a browser session, what
	// cookie stickiness pins); without, every request may reach any node.
	Cookies  bool
	Recorder *history.Recorder
	// ClientPrefix names the sessions in the history ("session-1", …).
	ClientPrefix string
}

// Allowed reports whether a probe's status says the push was permitted.
func Allowed(status int) bool { return status == http.StatusCreated || status == http.StatusOK }

// PushSessions runs the sessions until ctx is done and returns how many
// probes they sent. Every probe is recorded as a KindPushProbe op with
// its session as the op's Client and the answering node as its Node.
func PushSessions(ctx context.Context, o SessionOptions) (int, error) {
	if o.URL == "" || o.APIKey == "" || o.Recorder == nil || o.Sessions < 1 || o.Interval <= 0 {
		return 0, errors.New("push sessions: a URL, an API key, a recorder, at least one session and an interval are required")
	}
	if o.SpaceID == "" {
		o.SpaceID = octopusapi.DefaultSpaceID
	}
	if o.ClientPrefix == "" {
		o.ClientPrefix = "session-"
	}
	body, ct, err := probeBody()
	if err != nil {
		return 0, err
	}
	url := o.URL + "/api/" + o.SpaceID + "/packages/raw?overwriteMode=" + octopusapi.IgnoreIfExists
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	for i := range o.Sessions {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		if o.Cookies {
			client.Jar, _ = cookiejar.New(nil)
		}
		// The key goes through apiclient: to o.URL's origin only.
		client, err := clientFor(client, 0, o.URL, o.APIKey)
		if err != nil {
			return 0, fmt.Errorf("push sessions: %w", err)
		}
		name := o.ClientPrefix + strconv.Itoa(i+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(o.Interval)
			defer t.Stop()
			for n := 1; ; n++ {
				op := probe(ctx, client, url, body, ct)
				if ctx.Err() != nil && op.Outcome != history.OK {
					return // cut short by the end of the run: not an answer
				}
				op.Client, op.ID = name, name+"-"+strconv.Itoa(n)
				o.Recorder.Op(op)
				mu.Lock()
				total++
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
	return total, nil
}

func probeBody() ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", ProbePackage+".1.0.0.zip")
	if err != nil {
		return nil, "", fmt.Errorf("build the probe body: %w", err)
	}
	_, _ = fw.Write([]byte("octoha permission probe"))
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("build the probe body: %w", err)
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func probe(ctx context.Context, client *http.Client, url string, body []byte, ct string) history.Op {
	op := history.Op{Kind: KindPushProbe, Start: time.Now(), Via: "lb", URL: url, Bytes: int64(len(body)), PackageID: ProbePackage, Version: "1.0.0", Outcome: history.Failed}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", ct)
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			op.Status, op.Node = resp.StatusCode, resp.Header.Get(octopusapi.HeaderNode)
			op.Note = resp.Header.Get(octopusapi.HeaderPermissionCache)
			if Allowed(resp.StatusCode) || resp.StatusCode == http.StatusForbidden {
				op.Outcome = history.OK
			}
		}
	}
	if err != nil {
		op.Error = err.Error()
	}
	op.End = time.Now()
	return op
}
