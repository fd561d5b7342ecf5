package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/octoha/octoha/harness/loaders"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
)

// Options configure the engine and the objects it makes. Only Client and
// Namespace are usually set; the rest have defaults.
type Options struct {
	// Client talks to the API server (FromKubeconfig makes one). Manifests
	// and Emit do not use it.
	Client clientset.Interface
	// Namespace the objects go in, unless the WorkerSpec names one.
	Namespace string
	// CoordinatorAddress is the IP address pods reach the coordinator at;
	// the headless Service resolves to it. Required with a CoordinatorPort.
	CoordinatorAddress string
	// ServiceAccount the worker pods run as; empty is the namespace's
	// default. Its token is never mounted: workers do not call the API.
	ServiceAccount string
	// Resources of each worker; nil is defaultResources.
	Resources *corev1.ResourceRequirements
	// RunAsUser is the uid and gid of the worker; 0 is DefaultUser (root
	// is never used: runAsNonRoot is always set).
	RunAsUser int64
	// ImagePullPolicy; empty is IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// TTLAfterFinished lets Kubernetes delete a finished Job (and, through
	// owner references, its Secret and Service) if Remove never ran.
	TTLAfterFinished time.Duration
	// CallTimeout bounds each API request; 0 is DefaultCallTimeout.
	CallTimeout time.Duration
	// CreateNamespace adds a Namespace document to Manifests; the engine
	// itself never creates namespaces (that needs a cluster-wide rule).
	CreateNamespace bool
	// Logger; nil is slog.Default(). Secrets are never logged.
	Logger *slog.Logger
}

func (o Options) ttl() time.Duration {
	if o.TTLAfterFinished > 0 {
		return o.TTLAfterFinished
	}
	return DefaultTTLAfterFinished
}

func (o Options) callTimeout() time.Duration {
	if o.CallTimeout > 0 {
		return o.CallTimeout
	}
	return DefaultCallTimeout
}

func (o Options) user() int64 {
	if o.RunAsUser > 0 {
		return o.RunAsUser
	}
	return DefaultUser
}

func (o Options) pullPolicy() corev1.PullPolicy {
	if o.ImagePullPolicy != "" {
		return o.ImagePullPolicy
	}
	return corev1.PullIfNotPresent
}

func (o Options) resources() corev1.ResourceRequirements {
	if o.Resources != nil {
		return *o.Resources.DeepCopy()
	}
	return defaultResources()
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Engine places loader workers as an Indexed Job.
type Engine struct {
	opts Options
}

var _ loaders.Engine = (*Engine)(nil)

// New makes the engine; it does not contact the API server.
func New(opts Options) (*Engine, error) {
	if opts.Client == nil {
		return nil, errors.New("kubernetes engine: Options.Client is nil")
	}
	return &Engine{opts: opts}, nil
}

// Name is "kubernetes".
func (e *Engine) Name() string { return "kubernetes" }

// Namespace is the engine's namespace (from Options or the kubeconfig).
func (e *Engine) Namespace() string { return e.opts.Namespace }

// Start creates the Secret, the Job and, with a coordinator port, the
// headless Service and its EndpointSlice. On any failure it removes what
// it had created before returning the error.
func (e *Engine) Start(ctx context.Context, spec loaders.WorkerSpec) (loaders.Workers, error) {
	obj, err := build(spec, e.opts)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: %w", err)
	}
	w := &workers{opts: e.opts, ns: obj.namespace, runID: spec.RunID, count: spec.Count, service: obj.service != nil}
	if err := w.create(ctx, obj); err != nil {
		// The caller gets no Workers to Remove, so clean up here, even when
		// ctx is what ended Start.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.callTimeout()*4)
		defer cancel()
		if rerr := w.Remove(cctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and removing what was created: %w", rerr))
		}
		return nil, fmt.Errorf("kubernetes engine: starting %d workers of run %s: %w", spec.Count, spec.RunID, err)
	}
	w.opts.logger().Info("loader workers started", "engine", "kubernetes", "namespace", obj.namespace,
		"job", obj.job.Name, "workers", spec.Count)
	return w, nil
}

// workers are the objects of one Start.
type workers struct {
	opts    Options
	ns      string
	runID   string
	count   int
	service bool // a Service and EndpointSlice were part of this run
}

func (w *workers) act(verb, group, resource string) action {
	return action{verb: verb, group: group, resource: resource, name: Name(w.runID), namespace: w.ns}
}

func (w *workers) create(ctx context.Context, obj objects) error {
	c, t := w.opts.Client, w.opts.callTimeout()
	if _, err := call(ctx, t, w.act("create", "", "secrets"), func(ctx context.Context) (*corev1.Secret, error) {
		return c.CoreV1().Secrets(w.ns).Create(ctx, obj.secret, metav1.CreateOptions{})
	}); err != nil {
		return err
	}
	job, err := call(ctx, t, w.act("create", "batch", "jobs"), func(ctx context.Context) (*batchv1.Job, error) {
		return c.BatchV1().Jobs(w.ns).Create(ctx, obj.job, metav1.CreateOptions{})
	})
	if err != nil {
		return err
	}
	// Owned by the Job, everything goes with it when its TTL expires, so a
	// coordinator that died leaves no Secret behind.
	owner := []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}}
	if obj.service != nil {
		obj.service.OwnerReferences, obj.endpointSlice.OwnerReferences = owner, owner
		if _, err := call(ctx, t, w.act("create", "", "services"), func(ctx context.Context) (*corev1.Service, error) {
			return c.CoreV1().Services(w.ns).Create(ctx, obj.service, metav1.CreateOptions{})
		}); err != nil {
			return err
		}
		if _, err := call(ctx, t, w.act("create", "discovery.k8s.io", "endpointslices"), func(ctx context.Context) (any, error) {
			return c.DiscoveryV1().EndpointSlices(w.ns).Create(ctx, obj.endpointSlice, metav1.CreateOptions{})
		}); err != nil {
			return err
		}
	}
	// The Secret had to exist before the Job (pods read it at start), so
	// its owner is added now.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": owner}})
	if err != nil {
		return fmt.Errorf("encoding the Secret's owner reference: %w", err)
	}
	_, err = call(ctx, t, w.act("patch", "", "secrets"), func(ctx context.Context) (*corev1.Secret, error) {
		return c.CoreV1().Secrets(w.ns).Patch(ctx, Name(w.runID), types.MergePatchType, patch, metav1.PatchOptions{})
	})
	return err
}

// Kill deletes worker index's pod at once (grace 0). The Job's
// backoffLimitPerIndex of 0 keeps that index failed: it is not restarted.
func (w *workers) Kill(ctx context.Context, index int) error {
	if index < 0 || index >= w.count {
		return fmt.Errorf("kubernetes engine: kill worker %d: run %s has workers 0..%d", index, w.runID, w.count-1)
	}
	pods, err := w.pods(ctx)
	if err != nil {
		return fmt.Errorf("kubernetes engine: kill worker %d: %w", index, err)
	}
	var ended []string
	killed := 0
	zero := int64(0)
	for _, p := range pods[index] {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			ended = append(ended, fmt.Sprintf("%s %s", p.Name, p.Status.Phase))
			continue
		}
		a := w.act("delete", "", "pods")
		a.name = p.Name
		if _, err := call(ctx, w.opts.callTimeout(), a, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, w.opts.Client.CoreV1().Pods(w.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}); err != nil {
			return fmt.Errorf("kubernetes engine: kill worker %d: %w", index, err)
		}
		killed++
		w.opts.logger().Info("loader worker killed", "engine", "kubernetes", "index", index, "pod", p.Name)
	}
	if killed == 0 {
		if len(ended) > 0 {
			return fmt.Errorf("kubernetes engine: kill worker %d: it already ended (%v)", index, ended)
		}
		return fmt.Errorf("kubernetes engine: kill worker %d: it has no pod (not created yet, or already gone)", index)
	}
	return nil
}

// Remove deletes the Job (its pods go with it, in the background), the
// Service, the EndpointSlice and the Secret. NotFound counts as removed;
// every deletion is tried even when one fails.
func (w *workers) Remove(ctx context.Context) error {
	c, t := w.opts.Client, w.opts.callTimeout()
	name := Name(w.runID)
	bg := metav1.DeletePropagationBackground
	del := func(a action, fn func(context.Context) error) error {
		_, err := call(ctx, t, a, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
		if err != nil && apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	errs := []error{del(w.act("delete", "batch", "jobs"), func(ctx context.Context) error {
		return c.BatchV1().Jobs(w.ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	})}
	if w.service {
		errs = append(errs,
			del(w.act("delete", "discovery.k8s.io", "endpointslices"), func(ctx context.Context) error {
				return c.DiscoveryV1().EndpointSlices(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
			}),
			del(w.act("delete", "", "services"), func(ctx context.Context) error {
				return c.CoreV1().Services(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
			}))
	}
	errs = append(errs, del(w.act("delete", "", "secrets"), func(ctx context.Context) error {
		return c.CoreV1().Secrets(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
	}))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes engine: removing run %s: %w", w.runID, err)
	}
	w.opts.logger().Info("loader workers removed", "engine", "kubernetes", "namespace", w.ns, "job", name)
	return nil
}

// pods lists the run's pods by worker index. A pod without a readable
// index annotation is not one of the Job's workers and is ignored.
func (w *workers) pods(ctx context.Context) (map[int][]corev1.Pod, error) {
	list, err := call(ctx, w.opts.callTimeout(), w.act("list", "", "pods"), func(ctx context.Context) (*corev1.PodList, error) {
		return w.opts.Client.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: RunSelector(w.runID)})
	})
	if err != nil {
		return nil, err
	}
	byIndex := map[int][]corev1.Pod{}
	for _, p := range list.Items {
		if i, ok := podIndex(p); ok && i < w.count {
			byIndex[i] = append(byIndex[i], p)
		}
	}
	return byIndex, nil
}
