package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// newJarClient is an HTTP client that keeps cookies (a browser session)
// or not.
func newJarClient(keep bool) *http.Client {
	c := &http.Client{Timeout: 5 * time.Second}
	if keep {
		jar, _ := cookiejar.New(nil)
		c.Jar = jar
	}
	// Each request must be free to reach another node: no pooled
	// connection pins it.
	c.Transport = &http.Transport{DisableKeepAlives: true}
	return c
}

// pingName pings base and returns the name of the node that answered,
// read from the ping body (real Octopus nodes describe themselves too).
func pingName(ctx context.Context, client *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+octopusapi.PingPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ping through %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var n octopusapi.Node
	if err := json.Unmarshal(body, &n); err != nil || n.Name == "" {
		return "", fmt.Errorf("ping through %s answered %s with no node name", base, resp.Status)
	}
	return n.Name, nil
}
