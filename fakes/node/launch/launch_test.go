package launch_test

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/fakes/node"
	"github.com/octoha/octoha/fakes/node/launch"
)

// parse parses args with the node's flags, as `octoha node` defines them.
func parse(t *testing.T, args []string) (launch.Config, launch.Secrets) {
	t.Helper()
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c launch.Config
	var s launch.Secrets
	c.Register(fs)
	s.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("parse %q: stray arguments %q", args, fs.Args())
	}
	return c, s
}

// nonDefault sets every field of Config to a value unlike its default,
// failing on a field type it does not know, so a new field cannot escape
// the round trip.
func nonDefault(t *testing.T) launch.Config {
	t.Helper()
	c := launch.Default()
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			// Awkward values: spaces, '=' and a leading dash.
			f.SetString("-v " + v.Type().Field(i).Name + "=x")
		case int, int64:
			f.SetInt(f.Int() + 7)
		case bool:
			f.SetBool(!f.Bool())
		case time.Duration:
			f.SetInt(int64(f.Interface().(time.Duration) + 1500*time.Millisecond + 3))
		default:
			t.Fatalf("field %s: type %s not covered by this test", v.Type().Field(i).Name, f.Type())
		}
	}
	return c
}

func TestLaunchArgsRoundTrip(t *testing.T) {
	cases := map[string]launch.Config{
		"default":     launch.Default(),
		"zero":        {},
		"non-default": nonDefault(t),
		"harness-like": func() launch.Config {
			c := launch.Default()
			c.ID, c.Name, c.Listen = "OctopusServerNodes-1", "Node1", "127.0.0.11:8080"
			c.Packages, c.Artifacts, c.TaskLogs = "smb://octoha@127.0.0.6:4445/octoha/Packages", "/tmp/a", "/tmp/t"
			c.Heartbeat, c.UnhealthyAfter, c.MaxConcurrentTasks = 200*time.Millisecond, time.Second, 5
			c.UnsafeAckBeforeStore = true
			return c
		}(),
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			args := want.Args()
			got, sec := parse(t, args)
			if got != want {
				t.Errorf("Args %q parse back to\n%+v\nwant\n%+v", args, got, want)
			}
			if !reflect.DeepEqual(sec, launch.Secrets{}) {
				t.Errorf("Args %q set secrets: %v", args, sec)
			}
		})
	}
	if args := launch.Default().Args(); len(args) != 0 {
		t.Errorf("Default().Args() = %q, want none", args)
	}
	// Every field of the non-default config is rendered: the table covers
	// every field.
	if n, m := len(nonDefault(t).Args()), reflect.TypeFor[launch.Config]().NumField(); n != m {
		t.Errorf("non-default config renders %d flags for %d fields", n, m)
	}
}

func TestLaunchSecretsNeverInArgs(t *testing.T) {
	sec := launch.Secrets{
		APIKeys:     []string{"API-SECRETKEY1", "API-SECRETKEY2"},
		DB:          "postgres://octoha:DBPASSWORD@127.0.0.5:5432/octoha",
		SMBPassword: "SMBPASSWORD",
	}
	c := nonDefault(t)
	args := strings.Join(c.Args(), " ")
	for _, secret := range []string{"API-SECRETKEY1", "API-SECRETKEY2", "DBPASSWORD", "SMBPASSWORD"} {
		if strings.Contains(args, secret) {
			t.Errorf("args hold secret %q: %s", secret, args)
		}
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(f, sec); strings.Contains(s, secret) {
				t.Errorf("Sprintf(%q, secrets) leaks %q: %s", f, secret, s)
			}
		}
	}
	for _, flagName := range []string{launch.FlagDB, launch.FlagAPIKey} {
		if strings.Contains(args, "--"+flagName+"=") {
			t.Errorf("args set --%s: %s", flagName, args)
		}
	}

	env := sec.Env()
	want := []string{
		launch.EnvAPIKey + "=API-SECRETKEY1,API-SECRETKEY2",
		launch.EnvDB + "=" + sec.DB,
		launch.EnvSMBPassword + "=SMBPASSWORD",
	}
	if !slices.Equal(env, want) {
		t.Errorf("Env() = %q, want %q", env, want)
	}
	// Empty secrets are still set, so the parent's values are not inherited.
	if env := (launch.Secrets{}).Env(); len(env) != 3 {
		t.Errorf("empty Env() = %q, want all three variables", env)
	}
	m := sec.Map()
	var back launch.Secrets
	back.FromEnv(func(k string) string { return m[k] })
	if !reflect.DeepEqual(back, sec) {
		t.Errorf("FromEnv(Map()) = %#v, want the same secrets", back)
	}
}

func TestLaunchSecretsFlagsAndEnv(t *testing.T) {
	_, s := parse(t, []string{"--api-key", "A", "--api-key=B", "--db", "sqlite:/tmp/x.db"})
	env := map[string]string{launch.EnvAPIKey: " C, ,D ", launch.EnvDB: "postgres://ignored", launch.EnvSMBPassword: "pw"}
	s.FromEnv(func(k string) string { return env[k] })
	want := launch.Secrets{APIKeys: []string{"A", "B", "C", "D"}, DB: "sqlite:/tmp/x.db", SMBPassword: "pw"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %#v (keys %q, db %q), want keys %q, db %q", s, s.APIKeys, s.DB, want.APIKeys, want.DB)
	}
}

// The defaults here must be the node's: this package cannot import the
// node (the harness imports it), so the test holds them together.
func TestLaunchDefaultsMatchNode(t *testing.T) {
	d := launch.Default()
	if d.MaxPackageSize != node.DefaultMaxPackageSize {
		t.Errorf("launch's default maximum package size %d differs from fakes/node's %d", d.MaxPackageSize, node.DefaultMaxPackageSize)
	}
	if d.UploadStallTimeout != node.DefaultUploadStallTimeout {
		t.Errorf("launch's default upload stall timeout %v differs from fakes/node's %v", d.UploadStallTimeout, node.DefaultUploadStallTimeout)
	}
	if d.TaskPoll != node.DefaultTaskPoll || d.RetentionInterval != node.DefaultRetentionInterval {
		t.Errorf("launch's task poll %v / retention %v differ from fakes/node's %v / %v", d.TaskPoll, d.RetentionInterval, node.DefaultTaskPoll, node.DefaultRetentionInterval)
	}
	if d.PermissionCacheTTL != node.DefaultPermissionCacheTTL || d.PermissionCache != node.PermissionCacheLocal {
		t.Errorf("launch's permission cache %v/%s differs from fakes/node's %v/%s", d.PermissionCacheTTL, d.PermissionCache, node.DefaultPermissionCacheTTL, node.PermissionCacheLocal)
	}
	if d.OS != node.OSLinux {
		t.Errorf("launch's default OS %q differs from fakes/node's %q", d.OS, node.OSLinux)
	}
	if d.MaxConcurrentTasks != node.DefaultMaxConcurrentTasks || d.Heartbeat != node.DefaultHeartbeat || d.UnhealthyAfter != node.DefaultUnhealthyAfter {
		t.Errorf("launch defaults (tasks %d, heartbeat %v, unhealthy-after %v) differ from fakes/node's (%d, %v, %v)",
			d.MaxConcurrentTasks, d.Heartbeat, d.UnhealthyAfter, node.DefaultMaxConcurrentTasks, node.DefaultHeartbeat, node.DefaultUnhealthyAfter)
	}
}
