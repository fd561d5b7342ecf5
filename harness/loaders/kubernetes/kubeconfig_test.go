package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A kubeconfig whose server nothing listens on: FromKubeconfig must not
// call it.
const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: ctx
  context:
    cluster: c
    user: u
    namespace: loadns
current-context: ctx
users:
- name: u
  user:
    token: not-a-real-token
`

func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromKubeconfigNamespace(t *testing.T) {
	p := writeKubeconfig(t)
	e, err := FromKubeconfig(p, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Namespace() != "loadns" || e.opts.Client == nil || e.Name() != "kubernetes" {
		t.Errorf("namespace %q client %v", e.Namespace(), e.opts.Client)
	}
	e, err = FromKubeconfig(p, "other", Options{CoordinatorAddress: "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Namespace() != "other" || e.opts.CoordinatorAddress != "10.0.0.9" {
		t.Errorf("--namespace did not override the context's: %q; options %+v", e.Namespace(), e.opts)
	}
}

func TestFromKubeconfigEnvironment(t *testing.T) {
	t.Setenv("KUBECONFIG", writeKubeconfig(t))
	e, err := FromKubeconfig("", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Namespace() != "loadns" {
		t.Errorf("namespace %q from $KUBECONFIG", e.Namespace())
	}
}

func TestFromKubeconfigMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "absent")
	_, err := FromKubeconfig(p, "load", Options{})
	if err == nil || !strings.Contains(err.Error(), "kubeconfig "+p) {
		t.Fatalf("err = %v, want it to name %s", err, p)
	}
}
