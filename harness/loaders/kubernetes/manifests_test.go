package kubernetes

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/loaders"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	testAPIKey = "API-SECRETKEY0123456789"
	testToken  = "join-token-5f1c2e"
)

func testSpec() loaders.WorkerSpec {
	return loaders.WorkerSpec{
		RunID:           "r20261204a",
		Count:           3,
		Image:           "registry.example/octoha/node:dev",
		Command:         []string{"octoha", "loader", "--join", "octoha-loader-r20261204a.load.svc:7070"},
		Env:             map[string]string{"OCTOHA_API_KEY": testAPIKey, "OCTOHA_JOIN_TOKEN": testToken},
		CoordinatorPort: 7070,
		Timeout:         90*time.Minute + 500*time.Millisecond,
	}
}

func testOptions() Options {
	return Options{Namespace: "load", CoordinatorAddress: "10.1.2.3", Logger: slog.New(slog.DiscardHandler)}
}

// decoded is every document of a manifest stream, strictly decoded.
type decoded struct {
	namespaces []corev1.Namespace
	secrets    []corev1.Secret
	services   []corev1.Service
	slices     []discoveryv1.EndpointSlice
	jobs       []batchv1.Job
}

// decodeStrict splits YAML documents and decodes each into its API type,
// refusing unknown or duplicate fields.
func decodeStrict(t *testing.T, stream []byte) decoded {
	t.Helper()
	var d decoded
	for _, doc := range bytes.Split(stream, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 || string(bytes.TrimSpace(doc)) == "---" {
			continue
		}
		doc = bytes.TrimPrefix(doc, []byte("---\n"))
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("reading kind: %v\n%s", err, doc)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			var o corev1.Namespace
			err = yaml.UnmarshalStrict(doc, &o)
			d.namespaces = append(d.namespaces, o)
		case "v1 Secret":
			var o corev1.Secret
			err = yaml.UnmarshalStrict(doc, &o)
			d.secrets = append(d.secrets, o)
		case "v1 Service":
			var o corev1.Service
			err = yaml.UnmarshalStrict(doc, &o)
			d.services = append(d.services, o)
		case "discovery.k8s.io/v1 EndpointSlice":
			var o discoveryv1.EndpointSlice
			err = yaml.UnmarshalStrict(doc, &o)
			d.slices = append(d.slices, o)
		case "batch/v1 Job":
			var o batchv1.Job
			err = yaml.UnmarshalStrict(doc, &o)
			d.jobs = append(d.jobs, o)
		default:
			t.Fatalf("unexpected document %q:\n%s", tm.APIVersion+" "+tm.Kind, doc)
		}
		if err != nil {
			t.Fatalf("strict decode of %s: %v\n%s", tm.Kind, err, doc)
		}
	}
	return d
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// The decoder must be strict, or the tests below prove nothing.
func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	var j batchv1.Job
	err := yaml.UnmarshalStrict([]byte("apiVersion: batch/v1\nkind: Job\nspec:\n  completionMod: Indexed\n"), &j)
	if err == nil || !strings.Contains(err.Error(), "completionMod") {
		t.Fatalf("strict decode accepted a misspelt field: %v", err)
	}
}

func TestManifestsJob(t *testing.T) {
	out, err := Manifests(testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := decodeStrict(t, out)
	if len(d.jobs) != 1 || len(d.services) != 1 || len(d.slices) != 1 || len(d.secrets) != 0 || len(d.namespaces) != 0 {
		t.Fatalf("documents: %d jobs, %d services, %d slices, %d secrets, %d namespaces", len(d.jobs), len(d.services), len(d.slices), len(d.secrets), len(d.namespaces))
	}
	for _, secret := range []string{testAPIKey, testToken} {
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("a secret value is in the non-secret manifests")
		}
	}
	job := d.jobs[0]
	checkMeta(t, "job", job.ObjectMeta)
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode = %v", s.CompletionMode)
	}
	if *s.Completions != 3 || *s.Parallelism != 3 {
		t.Errorf("completions %d parallelism %d, want 3 and 3", *s.Completions, *s.Parallelism)
	}
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 0 || s.MaxFailedIndexes != nil {
		t.Errorf("backoffLimitPerIndex %v maxFailedIndexes %v: want 0 and unset", s.BackoffLimitPerIndex, s.MaxFailedIndexes)
	}
	if *s.ActiveDeadlineSeconds != 5401 { // 90m0.5s rounds up
		t.Errorf("activeDeadlineSeconds = %d", *s.ActiveDeadlineSeconds)
	}
	if *s.TTLSecondsAfterFinished != int32(DefaultTTLAfterFinished.Seconds()) {
		t.Errorf("ttlSecondsAfterFinished = %d", *s.TTLSecondsAfterFinished)
	}
	if got := s.Template.Labels[LabelRun]; got != "r20261204a" {
		t.Errorf("pod template run label = %q", got)
	}
	checkPodSpec(t, s.Template.Spec)
}

func checkMeta(t *testing.T, what string, m metav1.ObjectMeta) {
	t.Helper()
	if m.Name != "octoha-loader-r20261204a" || m.Namespace != "load" {
		t.Errorf("%s: name %q namespace %q", what, m.Name, m.Namespace)
	}
	if m.Labels[LabelManagedBy] != "octoha" || m.Labels[LabelRun] != "r20261204a" {
		t.Errorf("%s: labels %v", what, m.Labels)
	}
}

func checkPodSpec(t *testing.T, p corev1.PodSpec) {
	t.Helper()
	if p.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q", p.RestartPolicy)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("the service account token is mounted")
	}
	sc := p.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Fatalf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", sc)
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%d containers", len(p.Containers))
	}
	c := p.Containers[0]
	if strings.Join(c.Command, " ") != strings.Join(testSpec().Command, " ") || len(c.Args) != 0 {
		t.Errorf("command %q args %q", c.Command, c.Args)
	}
	if c.SecurityContext == nil || *c.SecurityContext.AllowPrivilegeEscalation || len(c.SecurityContext.Capabilities.Drop) != 1 {
		t.Errorf("container securityContext %+v", c.SecurityContext)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests %v", c.Resources.Requests)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "octoha-loader-r20261204a" {
		t.Errorf("envFrom %+v: want the run's Secret", c.EnvFrom)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if _, secret := testSpec().Env[e.Name]; secret {
			t.Errorf("secret variable %s is a literal in the pod spec", e.Name)
		}
	}
	idx, ok := env[loaders.IndexEnv]
	if !ok || idx.ValueFrom == nil || idx.ValueFrom.FieldRef == nil ||
		idx.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("%s = %+v: want the completion-index annotation", loaders.IndexEnv, idx)
	}
	if got := env[CoordinatorEnv].Value; got != "octoha-loader-r20261204a.load.svc:7070" {
		t.Errorf("%s = %q", CoordinatorEnv, got)
	}
}

func TestManifestsHeadlessService(t *testing.T) {
	out, err := Manifests(testSpec(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := decodeStrict(t, out)
	svc, slice := d.services[0], d.slices[0]
	checkMeta(t, "service", svc.ObjectMeta)
	checkMeta(t, "endpointslice", slice.ObjectMeta)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Selector) != 0 {
		t.Errorf("service clusterIP %q selector %v: want headless without selector", svc.Spec.ClusterIP, svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 7070 || svc.Spec.Ports[0].TargetPort.IntVal != 7070 {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}
	if slice.Labels[discoveryv1.LabelServiceName] != svc.Name {
		t.Errorf("slice labels %v do not name the service", slice.Labels)
	}
	if slice.AddressType != discoveryv1.AddressTypeIPv4 || len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "10.1.2.3" {
		t.Errorf("slice %s %+v", slice.AddressType, slice.Endpoints)
	}
	if len(slice.Ports) != 1 || *slice.Ports[0].Port != 7070 || *slice.Ports[0].Name != svc.Spec.Ports[0].Name {
		t.Errorf("slice ports %+v", slice.Ports)
	}
}

func TestManifestsIPv6AndNoCoordinator(t *testing.T) {
	o := testOptions()
	o.CoordinatorAddress = "fd00::7"
	out, err := Manifests(testSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	if d := decodeStrict(t, out); d.slices[0].AddressType != discoveryv1.AddressTypeIPv6 {
		t.Errorf("address type %s for fd00::7", d.slices[0].AddressType)
	}
	spec := testSpec()
	spec.CoordinatorPort = 0
	o.CoordinatorAddress = ""
	out, err = Manifests(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := decodeStrict(t, out); len(d.services) != 0 || len(d.slices) != 0 || len(d.jobs) != 1 {
		t.Errorf("without a coordinator port: %d services %d slices %d jobs", len(d.services), len(d.slices), len(d.jobs))
	}
}

func TestEmitWritesSecretSeparately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	o := testOptions()
	o.CreateNamespace = true
	// A secret file left 0644 by someone must come out 0600.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SecretFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths, err := Emit(dir, testSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{NamespaceFile, SecretFile, LoadersFile}
	if len(paths) != len(want) {
		t.Fatalf("paths %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] {
			t.Errorf("file %d = %s, want %s", i, p, want[i])
		}
	}
	fi, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	secretYAML, _ := os.ReadFile(filepath.Join(dir, SecretFile))
	ds := decodeStrict(t, secretYAML)
	if len(ds.secrets) != 1 {
		t.Fatalf("%d secrets in %s", len(ds.secrets), SecretFile)
	}
	checkMeta(t, "secret", ds.secrets[0].ObjectMeta)
	if ds.secrets[0].StringData["OCTOHA_API_KEY"] != testAPIKey || ds.secrets[0].StringData["OCTOHA_JOIN_TOKEN"] != testToken {
		t.Errorf("secret stringData keys %d, values wrong", len(ds.secrets[0].StringData))
	}
	nsYAML, _ := os.ReadFile(filepath.Join(dir, NamespaceFile))
	if dn := decodeStrict(t, nsYAML); len(dn.namespaces) != 1 || dn.namespaces[0].Name != "load" {
		t.Errorf("namespace file: %+v", dn.namespaces)
	}
	rest, _ := os.ReadFile(filepath.Join(dir, LoadersFile))
	if bytes.Contains(rest, []byte(testAPIKey)) {
		t.Errorf("%s holds the API key", LoadersFile)
	}
	if dr := decodeStrict(t, rest); len(dr.namespaces) != 0 || len(dr.jobs) != 1 {
		t.Errorf("%s: %d namespaces %d jobs", LoadersFile, len(dr.namespaces), len(dr.jobs))
	}
}

func TestManifestsRefuseBadInput(t *testing.T) {
	cases := []struct {
		name string
		edit func(*loaders.WorkerSpec, *Options)
		want string
	}{
		{"no run id", func(s *loaders.WorkerSpec, _ *Options) { s.RunID = "" }, "RunID is empty"},
		{"upper-case run id", func(s *loaders.WorkerSpec, _ *Options) { s.RunID = "Run1" }, "Kubernetes refuses"},
		{"long run id", func(s *loaders.WorkerSpec, _ *Options) { s.RunID = strings.Repeat("a", 50) }, "Kubernetes refuses"},
		{"run id too long for the host names", func(s *loaders.WorkerSpec, _ *Options) { s.RunID = strings.Repeat("a", 48) }, "too long for 3 workers"},
		{"no workers", func(s *loaders.WorkerSpec, _ *Options) { s.Count = 0 }, "Count 0"},
		{"no image", func(s *loaders.WorkerSpec, _ *Options) { s.Image = "" }, "Image is empty"},
		{"no command", func(s *loaders.WorkerSpec, _ *Options) { s.Command = nil }, "Command is empty"},
		{"no timeout", func(s *loaders.WorkerSpec, _ *Options) { s.Timeout = 0 }, "Timeout must be positive"},
		{"bad env name", func(s *loaders.WorkerSpec, _ *Options) { s.Env = map[string]string{"API-KEY": "x"} }, "not a C identifier"},
		{"env sets the index", func(s *loaders.WorkerSpec, _ *Options) { s.Env = map[string]string{loaders.IndexEnv: "1"} }, "set by the engine"},
		{"no namespace", func(_ *loaders.WorkerSpec, o *Options) { o.Namespace = "" }, "namespace: none given"},
		{"two namespaces", func(s *loaders.WorkerSpec, _ *Options) { s.Namespace = "other" }, `says "other" but the engine was made for "load"`},
		{"bad namespace", func(_ *loaders.WorkerSpec, o *Options) { o.Namespace = "Load_1" }, `namespace "Load_1"`},
		{"port without address", func(_ *loaders.WorkerSpec, o *Options) { o.CoordinatorAddress = "" }, "CoordinatorAddress is required"},
		{"address is a name", func(_ *loaders.WorkerSpec, o *Options) { o.CoordinatorAddress = "coord.example" }, "not an IP address"},
		{"loopback address", func(_ *loaders.WorkerSpec, o *Options) { o.CoordinatorAddress = "127.0.0.1" }, "cannot be reached from pods"},
		{"address without port", func(s *loaders.WorkerSpec, _ *Options) { s.CoordinatorPort = 0 }, "without a CoordinatorPort"},
		{"port out of range", func(s *loaders.WorkerSpec, _ *Options) { s.CoordinatorPort = 70000 }, "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, o := testSpec(), testOptions()
			c.edit(&spec, &o)
			_, err := Manifests(spec, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if _, err := Emit(t.TempDir(), spec, o); err == nil {
				t.Fatalf("Emit accepted what Manifests refused")
			}
		})
	}
}
