package kubernetes

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const docPath = "../../../docs/loaders-kubernetes.md"

// The Role the docs show is the one the engine needs (Rules), and decodes
// strictly, so a user who pastes it gets what the tests checked.
func TestDocsRoleIsRules(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("## Permissions (RBAC)"))
	if !ok {
		t.Fatal("the docs have no Permissions (RBAC) section")
	}
	_, block, ok := bytes.Cut(after, []byte("```yaml\n"))
	if !ok {
		t.Fatal("the RBAC section has no yaml block")
	}
	block, _, _ = bytes.Cut(block, []byte("```"))
	kinds := map[string]bool{}
	for _, d := range bytes.Split(block, []byte("---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d, &tm); err != nil {
			t.Fatal(err)
		}
		kinds[tm.Kind] = true
		switch tm.Kind {
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			err = yaml.UnmarshalStrict(d, &sa)
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			if err = yaml.UnmarshalStrict(d, &rb); err == nil && rb.RoleRef.Name != CoordinatorRole("load").Name {
				t.Errorf("the RoleBinding binds %q", rb.RoleRef.Name)
			}
		case "Role":
			var r rbacv1.Role
			if err = yaml.UnmarshalStrict(d, &r); err == nil && !reflect.DeepEqual(r.Rules, Rules) {
				t.Errorf("the docs' Role rules\n%+v\ndiffer from kubernetes.Rules\n%+v", r.Rules, Rules)
			}
		default:
			t.Errorf("unexpected kind %q in the docs' RBAC block", tm.Kind)
		}
		if err != nil {
			t.Errorf("strict decode of the docs' %s: %v", tm.Kind, err)
		}
	}
	if !kinds["Role"] || !kinds["RoleBinding"] || !kinds["ServiceAccount"] {
		t.Errorf("the docs' RBAC block has %v", kinds)
	}
	if !strings.Contains(string(doc), "cannot run on the machine this was built on") {
		t.Error("the docs no longer say that no real API server was tried")
	}
}
