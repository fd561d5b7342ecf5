// Package kubernetes places octoha's loader workers on Kubernetes: one
// Indexed Job (a pod per worker index), a Secret holding the workers'
// environment, and a headless Service by which workers find the
// coordinator. The same objects are created through client-go (Engine)
// or written out for `kubectl apply` (Manifests, Emit).
package kubernetes

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"time"

	"github.com/octoha/octoha/harness/loaders"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels on every object the engine creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "octoha"
	LabelRun       = "octoha.io/run"
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
)

// CoordinatorEnv carries "host:port" of the coordinator's headless Service
// into every worker, so its Command need not spell the cluster DNS name.
const CoordinatorEnv = "OCTOHA_LOADER_COORDINATOR"

// ContainerName is the worker container's name in the pod template.
const ContainerName = "loader"

// coordinatorPortName names the Service and EndpointSlice port.
const coordinatorPortName = "coordinator"

// Defaults for Options left zero.
const (
	DefaultTTLAfterFinished = 10 * time.Minute
	DefaultCallTimeout      = 30 * time.Second
	// DefaultUser is the uid and gid workers run as: the image's root is
	// never used, whatever the image's USER says.
	DefaultUser int64 = 65532
)

// envName is what envFrom accepts as a variable name (a C identifier);
// the kubelet silently skips other keys, so they are refused up front.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Name is the name of every object of run runID.
func Name(runID string) string { return "octoha-loader-" + runID }

// CoordinatorHost is the DNS name workers reach the coordinator by: the
// headless Service, resolving to the coordinator's address.
func CoordinatorHost(runID, namespace string) string {
	return fmt.Sprintf("%s.%s.svc", Name(runID), namespace)
}

// Labels are the labels of every object of run runID.
func Labels(runID string) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelRun:       runID,
		LabelName:      "octoha-loader",
		LabelComponent: "loader",
	}
}

// RunSelector selects every object of run runID.
func RunSelector(runID string) string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelRun + "=" + runID
}

// objects is everything one run places, before any API server saw it.
type objects struct {
	namespace     string
	secret        *corev1.Secret
	job           *batchv1.Job
	service       *corev1.Service            // nil without a coordinator port
	endpointSlice *discoveryv1.EndpointSlice // nil without a coordinator address
}

// namespaceFor picks the namespace: the spec's, else the options'; both
// set and different is a mistake worth refusing.
func namespaceFor(spec loaders.WorkerSpec, o Options) (string, error) {
	ns := spec.Namespace
	if ns == "" {
		ns = o.Namespace
	} else if o.Namespace != "" && o.Namespace != ns {
		return "", fmt.Errorf("namespace: the worker spec says %q but the engine was made for %q", ns, o.Namespace)
	}
	if ns == "" {
		return "", fmt.Errorf("namespace: none given (--namespace, or the kubeconfig context's namespace)")
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return "", fmt.Errorf("namespace %q: %v", ns, errs)
	}
	return ns, nil
}

// validate refuses a spec the API server would refuse, or worse, accept
// and run wrongly.
func validate(spec loaders.WorkerSpec, o Options) error {
	if spec.RunID == "" {
		return fmt.Errorf("worker spec: RunID is empty")
	}
	if errs := validation.IsDNS1035Label(Name(spec.RunID)); len(errs) > 0 {
		return fmt.Errorf("worker spec: RunID %q makes the object name %q, which Kubernetes refuses: %v", spec.RunID, Name(spec.RunID), errs)
	}
	if spec.Count < 1 || spec.Count > 10000 {
		return fmt.Errorf("worker spec: Count %d is out of range 1..10000", spec.Count)
	}
	// The Job controller names each pod's host "<job>-<index>", which must
	// itself be a DNS label: the API server would refuse the pods, not the Job.
	if host := fmt.Sprintf("%s-%d", Name(spec.RunID), spec.Count-1); len(host) > validation.DNS1123LabelMaxLength {
		return fmt.Errorf("worker spec: RunID %q is too long for %d workers: pod host name %q exceeds %d characters", spec.RunID, spec.Count, host, validation.DNS1123LabelMaxLength)
	}
	if spec.Image == "" {
		return fmt.Errorf("worker spec: Image is empty")
	}
	if len(spec.Command) == 0 {
		return fmt.Errorf("worker spec: Command is empty")
	}
	if spec.Timeout <= 0 {
		return fmt.Errorf("worker spec: Timeout must be positive (it becomes the Job's activeDeadlineSeconds), got %v", spec.Timeout)
	}
	for k := range spec.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("worker spec: environment variable name %q is not a C identifier; Kubernetes would skip it", k)
		}
		if k == loaders.IndexEnv || k == CoordinatorEnv {
			return fmt.Errorf("worker spec: environment variable %s is set by the engine, not by Env", k)
		}
	}
	if spec.CoordinatorPort < 0 || spec.CoordinatorPort > 65535 {
		return fmt.Errorf("worker spec: CoordinatorPort %d is out of range", spec.CoordinatorPort)
	}
	if o.CoordinatorAddress != "" {
		if _, err := coordinatorAddr(o.CoordinatorAddress); err != nil {
			return err
		}
		if spec.CoordinatorPort == 0 {
			return fmt.Errorf("worker spec: a coordinator address (%s) without a CoordinatorPort", o.CoordinatorAddress)
		}
	} else if spec.CoordinatorPort != 0 {
		return fmt.Errorf("options: CoordinatorAddress is required with a CoordinatorPort: the IP address pods reach the coordinator at, which the headless Service resolves to")
	}
	return nil
}

// coordinatorAddr parses the coordinator's IP. The EndpointSlice takes an
// address, never a name, and the API server refuses loopback and
// link-local ones, so they are refused here with the reason.
func coordinatorAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("options: CoordinatorAddress %q is not an IP address: %w", s, err)
	}
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("options: CoordinatorAddress %s cannot be reached from pods (loopback, link-local, unspecified or multicast)", s)
	}
	return a.Unmap(), nil
}

// build makes every object of one run.
func build(spec loaders.WorkerSpec, o Options) (objects, error) {
	ns, err := namespaceFor(spec, o)
	if err != nil {
		return objects{}, err
	}
	if err := validate(spec, o); err != nil {
		return objects{}, err
	}
	obj := objects{namespace: ns, secret: buildSecret(spec, ns), job: buildJob(spec, o, ns)}
	if spec.CoordinatorPort != 0 {
		addr, _ := coordinatorAddr(o.CoordinatorAddress) // validated above
		obj.service = buildService(spec, ns)
		obj.endpointSlice = buildEndpointSlice(spec, ns, addr)
	}
	return obj, nil
}

func meta(spec loaders.WorkerSpec, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: Name(spec.RunID), Namespace: ns, Labels: Labels(spec.RunID)}
}

func buildSecret(spec loaders.WorkerSpec, ns string) *corev1.Secret {
	data := make(map[string][]byte, len(spec.Env))
	for k, v := range spec.Env {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(spec, ns),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

func buildService(spec loaders.WorkerSpec, ns string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(spec, ns),
		Spec: corev1.ServiceSpec{
			// Headless and selector-less: DNS answers with the addresses of
			// the EndpointSlice below, i.e. the coordinator itself.
			ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{
				Name: coordinatorPortName, Protocol: corev1.ProtocolTCP,
				Port: int32(spec.CoordinatorPort), TargetPort: intstr.FromInt32(int32(spec.CoordinatorPort)),
			}},
		},
	}
}

func buildEndpointSlice(spec loaders.WorkerSpec, ns string, addr netip.Addr) *discoveryv1.EndpointSlice {
	m := meta(spec, ns)
	m.Labels[discoveryv1.LabelServiceName] = Name(spec.RunID)
	// Not the EndpointSlice controller's: it leaves slices of other managers alone.
	m.Labels[discoveryv1.LabelManagedBy] = "octoha.io"
	typ := discoveryv1.AddressTypeIPv4
	if addr.Is6() {
		typ = discoveryv1.AddressTypeIPv6
	}
	port, proto, name := int32(spec.CoordinatorPort), corev1.ProtocolTCP, coordinatorPortName
	ready := true
	return &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  m,
		AddressType: typ,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
}

func buildJob(spec loaders.WorkerSpec, o Options, ns string) *batchv1.Job {
	count := int32(spec.Count)
	perIndex := int32(0) // a worker that dies stays dead: its operations stay "unknown"
	deadline := int64(math.Ceil(spec.Timeout.Seconds()))
	ttl := int32(o.ttl().Seconds())
	mode := batchv1.IndexedCompletion
	replace := batchv1.Failed
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta(spec, ns),
		Spec: batchv1.JobSpec{
			CompletionMode: &mode,
			Completions:    &count,
			Parallelism:    &count,
			// Per index, not per Job: one killed worker must not fail the
			// Job and with it every other worker (backoffLimit 0 would).
			BackoffLimitPerIndex:    &perIndex,
			PodReplacementPolicy:    &replace,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(spec.RunID)},
				Spec:       podSpec(spec, o, ns),
			},
		},
	}
}

func podSpec(spec loaders.WorkerSpec, o Options, ns string) corev1.PodSpec {
	user := o.user()
	yes, no := true, false
	env := []corev1.EnvVar{{
		// The Job controller writes the index into this annotation (and
		// JOB_COMPLETION_INDEX from it); the worker reads IndexEnv the
		// same on every engine.
		Name: loaders.IndexEnv,
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
		}},
	}, {Name: "TMPDIR", Value: "/tmp"}, {Name: "HOME", Value: "/tmp"}}
	if spec.CoordinatorPort != 0 {
		env = append(env, corev1.EnvVar{Name: CoordinatorEnv, Value: fmt.Sprintf("%s:%d", CoordinatorHost(spec.RunID, ns), spec.CoordinatorPort)})
	}
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		// Workers never talk to the API server.
		AutomountServiceAccountToken: &no,
		ServiceAccountName:           o.ServiceAccount,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   &yes,
			RunAsUser:      &user,
			RunAsGroup:     &user,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            ContainerName,
			Image:           spec.Image,
			ImagePullPolicy: o.pullPolicy(),
			Command:         append([]string(nil), spec.Command...),
			WorkingDir:      "/tmp",
			Env:             env,
			EnvFrom: []corev1.EnvFromSource{{
				SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: Name(spec.RunID)}},
			}},
			Resources: o.resources(),
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no,
				ReadOnlyRootFilesystem:   &yes,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
}

// defaultResources: requests so the scheduler spreads workers; a memory
// limit so a runaway worker is killed alone; no CPU limit, because a
// throttled loader would be measured instead of the cluster.
func defaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
}
