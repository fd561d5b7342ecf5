// Package external is the provider for a real Octopus HA cluster, described
// in a YAML spec (provider: external): its load balancer URL, each node's
// own URL, and the environment variable holding an API key. The harness
// reaches it exactly as it reaches the simulated ones — over HTTP — so the
// same scenarios certify a staging cluster before an upgrade. It is
// read-only and drain-only by default: node, database and share faults run
// only when the spec allows destructive faults AND gives a hook command for
// each (e.g. an ssh or cloud CLI call), and they skip, saying why, when not.
package external

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/octoha/octoha/fakes/node/launch"
	"github.com/octoha/octoha/harness/apiclient"
	"github.com/octoha/octoha/harness/azure"
	"github.com/octoha/octoha/harness/azure/faults"
	"github.com/octoha/octoha/harness/cluster"
	"github.com/octoha/octoha/harness/lb"
	"github.com/octoha/octoha/internal/redact"
	"github.com/octoha/octoha/octopusapi"
)

// DefaultAPIKeyEnv is where the API key is read when the spec names none:
// the variable the fake nodes and octoha's clients read too.
const DefaultAPIKeyEnv = launch.EnvAPIKey

// Hook names a spec may define. "{node}" in a command is replaced by the
// node's name.
const (
	HookKill       = "kill"
	HookPause      = "pause"
	HookResume     = "resume"
	HookStop       = "stop"
	HookStart      = "start"
	HookDBStop     = "db-stop"
	HookDBStart    = "db-start"
	HookShareStop  = "share-stop"
	HookShareStart = "share-start"
)

// Options configures Connect.
type Options struct {
	Logger *slog.Logger
	// HookTimeout bounds each hook command; default 5 minutes.
	HookTimeout time.Duration
	// AzureTransport and AzureCredential replace Azure's HTTP client and
	// default credential chain (tests: the SDK's fake servers).
	AzureTransport  policy.Transporter
	AzureCredential azcore.TokenCredential
}

// Cluster is a connected external cluster.
type Cluster struct {
	// az injects node faults through Azure's API when the spec has an
	// azure: section (instead of hooks); azDone says what it did to each
	// node ("vm" powered off, "service" stopped), for StartNode.
	az     *faults.Injector
	azMu   sync.Mutex
	azDone map[string]string
	spec   cluster.Spec
	key    string
	nodes  []cluster.Node
	hooks  map[string]string
	allow  bool
	log    *slog.Logger
	hookTO time.Duration
}

var (
	_ cluster.Cluster            = (*Cluster)(nil)
	_ cluster.NodeController     = (*Cluster)(nil)
	_ cluster.DatabaseController = (*Cluster)(nil)
	_ cluster.ShareController    = (*Cluster)(nil)
)

// Connect checks that the cluster answers (the load balancer's API root
// with the key, and each node's ping) and returns it. Nothing is changed
// on the cluster.
func Connect(ctx context.Context, spec cluster.Spec, opts Options) (*Cluster, error) {
	spec.Provider = cluster.ProviderExternal
	ext := spec.External
	if ext == nil || ext.LBURL == "" {
		return nil, errors.New("external cluster: the spec needs external.lbURL (and external.nodes with each node's URL)")
	}
	if len(ext.Nodes) == 0 {
		return nil, errors.New("external cluster: list every node under external.nodes (name and direct URL): the harness pings nodes directly, as the load balancer does")
	}
	env := ext.APIKeyEnv
	if env == "" {
		env = DefaultAPIKeyEnv
	}
	key := os.Getenv(env)
	if key == "" {
		return nil, fmt.Errorf("external cluster: no API key in $%s (external.apiKeyEnv names the variable)", env)
	}
	spec.APIKey = key
	spec.Nodes = len(ext.Nodes)
	norm, err := spec.Normalize()
	if err != nil {
		return nil, fmt.Errorf("external cluster spec: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HookTimeout <= 0 {
		opts.HookTimeout = 5 * time.Minute
	}
	c := &Cluster{spec: norm, key: key, hooks: ext.Hooks, allow: ext.AllowDestructive, log: opts.Logger, hookTO: opts.HookTimeout}
	if norm.Azure != nil && c.allow {
		// No request is made here: a missing credential shows on the
		// first fault, naming what to do.
		azc, err := azure.New(norm.Azure, azure.Options{Logger: opts.Logger, Transport: opts.AzureTransport, Credential: opts.AzureCredential})
		if err != nil {
			return nil, fmt.Errorf("external cluster: %w", err)
		}
		c.az, c.azDone = faults.New(azc), map[string]string{}
	}
	for i, n := range ext.Nodes {
		if n.Name == "" || n.URL == "" {
			return nil, fmt.Errorf("external cluster: node %d needs a name and a url", i+1)
		}
		if _, err := url.ParseRequestURI(n.URL); err != nil {
			return nil, fmt.Errorf("external cluster: node %s url %q: %w", n.Name, redact.URL(n.URL), redact.Error(err, redact.Secrets(n.URL)))
		}
		c.nodes = append(c.nodes, cluster.Node{Name: n.Name, URL: strings.TrimRight(n.URL, "/"), OS: n.OS})
	}
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	c.log.Info("connected to an external cluster", "lb", redact.URL(c.URL()), "nodes", len(c.nodes), "destructive", c.allow)
	return c, nil
}

// probe reads the API root through the load balancer with the key, learns
// each node's ID from its ping body, and fails clearly when something does
// not answer. The key goes only to the spec's load balancer and node
// origins: a redirect elsewhere is refused, naming the origin.
func (c *Cluster) probe(ctx context.Context) error {
	origins := []string{c.URL()}
	for _, n := range c.nodes {
		origins = append(origins, n.URL)
	}
	client, err := apiclient.New(apiclient.Options{APIKey: c.key, Origins: origins, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("external cluster: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL()+octopusapi.SpacesAllPath, nil)
	if err != nil {
		return fmt.Errorf("external cluster: load balancer URL %q: %w", redact.URL(c.URL()), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("external cluster: load balancer %s does not answer: %w", redact.URL(c.URL()), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("external cluster: GET %s through the load balancer answered %s (is the API key right?)", octopusapi.SpacesAllPath, resp.Status)
	}
	for i, n := range c.nodes {
		code, _, err := cluster.PingStatus(ctx, client, n.URL)
		if err != nil {
			return fmt.Errorf("external cluster: node %s (%s) does not answer its ping: %w", n.Name, redact.URL(n.URL), err)
		}
		c.log.Info("node answers", "node", n.Name, "ping", code)
		if id, err := nodeID(ctx, client, n.URL); err == nil {
			c.nodes[i].ID = id
		}
	}
	return nil
}

// nodeID reads the node's ID from its ping body (which always describes
// the answering node).
func nodeID(ctx context.Context, client *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+octopusapi.PingPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var n octopusapi.Node
	if err := decodeJSON(resp, &n); err != nil || n.Id == "" {
		return "", fmt.Errorf("ping body of %s names no node: %v", redact.URL(base), err)
	}
	return n.Id, nil
}

// Spec implements cluster.Cluster.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// URL implements cluster.Cluster.
func (c *Cluster) URL() string { return strings.TrimRight(c.spec.External.LBURL, "/") }

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []cluster.Node { return append([]cluster.Node(nil), c.nodes...) }

// APIKey implements cluster.Cluster.
func (c *Cluster) APIKey() string { return c.key }

// LBStates implements cluster.Cluster: a real cluster's load balancer is
// not observable by the harness; the checkers judge it from requests.
func (c *Cluster) LBStates(context.Context) ([]lb.ServerState, error) {
	out := make([]lb.ServerState, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = lb.ServerState{Name: n.Name, State: lb.StateUnknown, Detail: "external load balancer: judged from the requests it routes"}
	}
	return out, nil
}

// Components implements cluster.Cluster.
func (c *Cluster) Components() []cluster.Component {
	out := []cluster.Component{{Part: "load balancer", Description: "external load balancer (real cluster)", Location: redact.URL(c.URL())}}
	for _, n := range c.nodes {
		out = append(out, cluster.Component{Part: "node " + n.Name, Description: "Octopus Server node (real cluster)", Location: redact.URL(n.URL)})
	}
	return out
}

// Down implements cluster.Cluster: nothing is stopped on a real cluster.
func (c *Cluster) Down(context.Context) error { return nil }

// faultHooks are the hooks each destructive fault needs.
var faultHooks = map[cluster.Capability][]string{
	cluster.CapKill:        {HookKill, HookStart},
	cluster.CapPause:       {HookPause, HookResume},
	cluster.CapRestart:     {HookStop, HookStart},
	cluster.CapDBOutage:    {HookDBStop, HookDBStart},
	cluster.CapShareOutage: {HookShareStop, HookShareStart},
}

// Can implements cluster.Capable.
func (c *Cluster) Can(cp cluster.Capability) error { return CanSpec(c.spec, cp) }

// CanSpec is Can for a whole spec: with an azure: section, kill (VM power
// off) and restart (service stop through Run Command) need no hooks, only
// --allow-destructive.
func CanSpec(spec cluster.Spec, cp cluster.Capability) error {
	if (cp == cluster.CapKill || cp == cluster.CapRestart) && spec.Azure != nil && spec.External != nil {
		if !spec.External.AllowDestructive {
			return fmt.Errorf("%s on an external cluster is destructive: it needs --allow-destructive (or external.allowDestructive: true); with azure: it goes through Azure's API", cp)
		}
		return nil
	}
	return Can(spec.External, cp)
}

// azureNode injects a node fault through Azure: kill powers the VM off,
// stop stops the Octopus service with Run Command. The undo is the
// caller's (the nemesis registers StartNode before injecting).
func (c *Cluster) azureNode(ctx context.Context, name, what string) error {
	var undo faults.Stack // StartNode undoes; this stack only satisfies the registration
	c.azMu.Lock()
	c.azDone[name] = what
	c.azMu.Unlock()
	if what == "vm" {
		return c.az.PowerOff(ctx, &undo, name)
	}
	return c.az.StopService(ctx, &undo, name)
}

// Can says whether a real cluster described by ext can take cp, without
// connecting to it: drains always (through the API); destructive faults
// only when allowed AND hooked; never what only a simulated cluster offers
// (choosing its shape, partitions, the load balancer's own view, the share
// listing). Anything else is refused.
func Can(ext *cluster.ExternalSpec, cp cluster.Capability) error {
	if ext == nil {
		return errors.New("no external: section in the cluster spec")
	}
	switch cp {
	case cluster.CapDrain:
		return nil
	case cluster.CapSimulated:
		return errors.New("it needs a simulated cluster (it chooses the load balancer, the cluster's size or runs deliberately broken nodes)")
	case cluster.CapPartition:
		return errors.New("network partitions are not available on an external cluster")
	case cluster.CapLBView:
		return errors.New("an external load balancer's own view of the nodes is not observable (ejection is judged from the requests it routes)")
	case cluster.CapFileListing:
		return errors.New("the share of an external cluster is not listed by the harness")
	}
	hooks, ok := faultHooks[cp]
	if !ok {
		return fmt.Errorf("%s is not supported on an external cluster (unknown faults are treated as destructive)", cp)
	}
	if !ext.AllowDestructive {
		return fmt.Errorf("%s on an external cluster is destructive: it needs --allow-destructive (or external.allowDestructive: true) and the hooks %s", cp, strings.Join(hooks, ", "))
	}
	var missing []string
	for _, h := range hooks {
		if ext.Hooks[h] == "" {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s on an external cluster needs the hooks %s in external.hooks", cp, strings.Join(missing, ", "))
	}
	return nil
}

// nodeNameRE is what a node name in a hook may look like: it is put on a
// shell command line, so nothing a shell would interpret.
var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// HookCommand is the shell command a hook runs for node ("" for the
// database and share hooks): {node} is replaced by the shell-quoted name,
// which must be a plain node name.
func HookCommand(template, node string) (string, error) {
	if node != "" && !nodeNameRE.MatchString(node) {
		return "", fmt.Errorf("node name %q cannot be passed to a hook (letters, digits, '.', '_' and '-' only)", node)
	}
	if node == "" {
		return strings.ReplaceAll(template, "{node}", ""), nil
	}
	if runtime.GOOS == "windows" {
		// cmd has no single quotes; a validated name needs none.
		return strings.ReplaceAll(template, "{node}", node), nil
	}
	return strings.ReplaceAll(template, "{node}", ShellQuote(node)), nil
}

func (c *Cluster) run(ctx context.Context, hook, node string) error {
	if !c.allow {
		return fmt.Errorf("hook %s: destructive faults on an external cluster need external.allowDestructive: true", hook)
	}
	tmpl := c.hooks[hook]
	if tmpl == "" {
		return fmt.Errorf("no %q hook in the external cluster spec", hook)
	}
	cmdline, err := HookCommand(tmpl, node)
	if err != nil {
		return fmt.Errorf("hook %s: %w", hook, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.hookTO)
	defer cancel()
	c.log.Info("running hook", "hook", hook, "node", node)
	cmd := hookShell(ctx, cmdline)
	// The node's name is also in the environment, for hooks that would
	// rather not parse it from their command line.
	cmd.Env = append(os.Environ(), "OCTOHA_NODE="+node, "OCTOHA_HOOK="+hook)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hook %s for %q failed: %w: %s", hook, node, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// KillNode implements cluster.NodeController: Azure power-off, or the
// kill hook.
func (c *Cluster) KillNode(ctx context.Context, name string) error {
	if c.az != nil {
		return c.azureNode(ctx, name, "vm")
	}
	return c.run(ctx, HookKill, name)
}

// PauseNode implements cluster.NodeController through the pause hook.
func (c *Cluster) PauseNode(ctx context.Context, name string) error {
	return c.run(ctx, HookPause, name)
}

// ResumeNode implements cluster.NodeController through the resume hook.
func (c *Cluster) ResumeNode(ctx context.Context, name string) error {
	return c.run(ctx, HookResume, name)
}

// StopNode implements cluster.NodeController: the Octopus service
// stopped through Azure Run Command, or the stop hook.
func (c *Cluster) StopNode(ctx context.Context, name string) error {
	if c.az != nil {
		return c.azureNode(ctx, name, "service")
	}
	return c.run(ctx, HookStop, name)
}

// StartNode implements cluster.NodeController (Azure: start the VM or the
// service, whichever was stopped; else the start hook), then waits until
// the node answers its ping.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	if err := c.start(ctx, name); err != nil {
		return err
	}
	for _, n := range c.nodes {
		if n.Name == name {
			wctx, cancel := context.WithTimeout(ctx, c.hookTO)
			defer cancel()
			return cluster.WaitNodePing(wctx, n.URL, http.StatusOK)
		}
	}
	return fmt.Errorf("no node named %q", name)
}

func (c *Cluster) start(ctx context.Context, name string) error {
	if c.az == nil {
		return c.run(ctx, HookStart, name)
	}
	c.azMu.Lock()
	what := c.azDone[name]
	delete(c.azDone, name)
	c.azMu.Unlock()
	switch what {
	case "vm":
		return c.az.StartVM(ctx, name)
	case "service":
		return c.az.StartService(ctx, name)
	}
	// Nothing stopped it through Azure: start both, harmless when running.
	if err := c.az.StartVM(ctx, name); err != nil {
		return err
	}
	return c.az.StartService(ctx, name)
}

// StopDatabase implements cluster.DatabaseController through a hook.
func (c *Cluster) StopDatabase(ctx context.Context) error { return c.run(ctx, HookDBStop, "") }

// StartDatabase implements cluster.DatabaseController through a hook.
func (c *Cluster) StartDatabase(ctx context.Context) error { return c.run(ctx, HookDBStart, "") }

// StopShare implements cluster.ShareController through a hook.
func (c *Cluster) StopShare(ctx context.Context) error { return c.run(ctx, HookShareStop, "") }

// StartShare implements cluster.ShareController through a hook.
func (c *Cluster) StartShare(ctx context.Context) error { return c.run(ctx, HookShareStart, "") }

// hookShell runs a hook's command line with the platform's shell: sh on
// Unix, cmd on Windows (where certification runs often start).
func hookShell(ctx context.Context, cmdline string) *exec.Cmd {
	if runtime.GOOS == "windows" {
		return exec.CommandContext(ctx, "cmd", "/C", cmdline)
	}
	return exec.CommandContext(ctx, "sh", "-c", cmdline)
}

// Hooks names the hooks a destructive fault needs (none for the others).
func Hooks(cp cluster.Capability) []string { return append([]string(nil), faultHooks[cp]...) }
