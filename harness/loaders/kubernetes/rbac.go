package kubernetes

import (
	"context"
	"fmt"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rules are all the coordinator's identity needs, in the run's namespace
// only, to Start, watch (Status), Kill and Remove workers. Worker pods
// need none: their service account token is not even mounted. A test
// checks every request the engine makes against these rules.
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "patch", "delete"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"create", "delete"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"create", "delete"}},
}

// CoordinatorRole is a Role holding Rules, for the coordinator's identity
// in namespace ns (bind it with a RoleBinding; the docs show one).
func CoordinatorRole(ns string) *rbacv1.Role {
	rules := make([]rbacv1.PolicyRule, len(Rules))
	for i, r := range Rules {
		rules[i] = *r.DeepCopy()
	}
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: "octoha-loader-coordinator", Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
		Rules:      rules,
	}
}

// action is one API request, described for errors.
type action struct {
	verb, group, resource, name, namespace string
}

func (a action) String() string {
	gr := a.resource
	if a.group != "" {
		gr += "." + a.group
	}
	return fmt.Sprintf("%s %s/%s in namespace %s", a.verb, gr, a.name, a.namespace)
}

// wrap says what was attempted; a 403 also says which rule is missing.
func (a action) wrap(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s: forbidden: the coordinator's identity needs the RBAC rule {apiGroups: [%q], resources: [%s], verbs: [%s]} in namespace %s (docs/loaders-kubernetes.md lists every rule): %w",
			a, a.group, a.resource, a.verb, a.namespace, err)
	}
	return fmt.Errorf("%s: %w", a, err)
}

// call runs one API request bounded by ctx and timeout. The request gets
// the bounded ctx; the select also bounds a client that ignores it.
func call[T any](ctx context.Context, timeout time.Duration, a action, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: a late answer never blocks its goroutine
	go func() {
		v, err := fn(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return r.v, a.wrap(r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		var zero T
		return zero, a.wrap(fmt.Errorf("no answer: %w", ctx.Err()))
	}
}
