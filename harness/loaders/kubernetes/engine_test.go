package kubernetes

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octoha/octoha/harness/loaders"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	batchtyped "k8s.io/client-go/kubernetes/typed/batch/v1"
	k8stesting "k8s.io/client-go/testing"
)

const jobName = "octoha-loader-r20261204a"

func startFake(t *testing.T, cs *fake.Clientset) (*Engine, loaders.Workers) {
	t.Helper()
	o := testOptions()
	o.Client = cs
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := e.Start(ctx, testSpec())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return e, w
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// addPod adds the pod the Job controller would make for index i.
func addPod(t *testing.T, cs *fake.Clientset, i int, phase corev1.PodPhase, edit func(*corev1.Pod)) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: jobName + "-" + strconv.Itoa(i) + "-abcde", Namespace: "load",
			Labels:      Labels("r20261204a"),
			Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: strconv.Itoa(i)},
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	if edit != nil {
		edit(p)
	}
	if err := cs.Tracker().Add(p); err != nil {
		t.Fatal(err)
	}
}

func TestNewNeedsClient(t *testing.T) {
	if _, err := New(Options{Namespace: "load"}); err == nil {
		t.Fatal("New accepted a nil client")
	}
	e, err := New(Options{Client: fake.NewClientset(), Namespace: "load"})
	if err != nil || e.Name() != "kubernetes" {
		t.Fatalf("New: %v, name %q", err, e.Name())
	}
}

func TestStartCreatesObjects(t *testing.T) {
	cs := fake.NewClientset()
	startFake(t, cs)
	c := ctx(t)
	secret, err := cs.CoreV1().Secrets("load").Get(c, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(secret.Data["OCTOHA_API_KEY"]) != testAPIKey || secret.Labels[LabelRun] != "r20261204a" {
		t.Errorf("secret data or labels wrong: labels %v", secret.Labels)
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Kind != "Job" || secret.OwnerReferences[0].Name != jobName {
		t.Errorf("secret owner %+v: want the Job, so its TTL takes the Secret too", secret.OwnerReferences)
	}
	job, err := cs.BatchV1().Jobs("load").Get(c, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPodSpec(t, job.Spec.Template.Spec)
	svc, err := cs.CoreV1().Services("load").Get(c, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.OwnerReferences) != 1 {
		t.Errorf("service clusterIP %q owners %v", svc.Spec.ClusterIP, svc.OwnerReferences)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("load").Get(c, jobName, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestStatusMapsPods(t *testing.T) {
	cs := fake.NewClientset()
	_, w := startFake(t, cs)
	addPod(t, cs, 0, corev1.PodRunning, nil)
	addPod(t, cs, 1, corev1.PodFailed, func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "join refused"}}}}
	})
	addPod(t, cs, 2, corev1.PodPending, func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "pull access denied"}}}}
	})
	// Not one of the Job's pods: no index annotation.
	if err := cs.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "load", Labels: Labels("r20261204a")}}); err != nil {
		t.Fatal(err)
	}
	got, err := w.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ state, id, msg string }{
		{loaders.StateRunning, jobName + "-0-abcde", ""},
		{loaders.StateFailed, jobName + "-1-abcde", "container loader exited 2 (Error): join refused"},
		{loaders.StatePending, jobName + "-2-abcde", "ImagePullBackOff: pull access denied"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d states: %+v", len(got), got)
	}
	for i, g := range got {
		if g.Index != i || g.State != want[i].state || g.ID != want[i].id || g.Message != want[i].msg {
			t.Errorf("worker %d = %+v, want %+v", i, g, want[i])
		}
	}
}

func TestStatusFromJobWhenPodsAreGone(t *testing.T) {
	cs := fake.NewClientset()
	_, w := startFake(t, cs)
	c := ctx(t)
	job, err := cs.BatchV1().Jobs("load").Get(c, jobName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	failed := "1"
	job.Status.CompletedIndexes, job.Status.FailedIndexes = "0", &failed
	if _, err := cs.BatchV1().Jobs("load").UpdateStatus(c, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := w.Status(c)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != loaders.StateComplete || got[1].State != loaders.StateFailed || got[2].State != loaders.StatePending {
		t.Fatalf("states %+v: want complete, failed, pending", got)
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
		Reason: batchv1.JobReasonDeadlineExceeded, Message: "Job was active longer than specified deadline"}}
	if _, err := cs.BatchV1().Jobs("load").UpdateStatus(c, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err = w.Status(c)
	if err != nil {
		t.Fatal(err)
	}
	if got[2].State != loaders.StateFailed || !strings.Contains(got[2].Message, "DeadlineExceeded") {
		t.Fatalf("worker 2 = %+v: want failed by the deadline", got[2])
	}
	job.Status.CompletedIndexes = "0-7"
	if _, err := cs.BatchV1().Jobs("load").UpdateStatus(c, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Status(c); err == nil || !strings.Contains(err.Error(), "outside 0..2") {
		t.Fatalf("a completedIndexes beyond Count: err = %v", err)
	}
}

func TestKillDeletesThePodAtOnce(t *testing.T) {
	cs := fake.NewClientset()
	_, w := startFake(t, cs)
	addPod(t, cs, 0, corev1.PodRunning, nil)
	addPod(t, cs, 1, corev1.PodRunning, nil)
	addPod(t, cs, 2, corev1.PodSucceeded, nil)
	var grace []int64
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if g := a.(k8stesting.DeleteActionImpl).DeleteOptions.GracePeriodSeconds; g != nil {
			grace = append(grace, *g)
		} else {
			grace = append(grace, -1)
		}
		return false, nil, nil
	})
	c := ctx(t)
	if err := w.Kill(c, 1); err != nil {
		t.Fatal(err)
	}
	if len(grace) != 1 || grace[0] != 0 {
		t.Fatalf("grace periods of deletions %v, want one of 0", grace)
	}
	if _, err := cs.CoreV1().Pods("load").Get(c, jobName+"-1-abcde", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("worker 1's pod after Kill: %v", err)
	}
	if _, err := cs.CoreV1().Pods("load").Get(c, jobName+"-0-abcde", metav1.GetOptions{}); err != nil {
		t.Fatalf("worker 0's pod went too: %v", err)
	}
	for _, bad := range []struct {
		index int
		want  string
	}{{1, "has no pod"}, {2, "already ended"}, {3, "has workers 0..2"}, {-1, "has workers 0..2"}} {
		if err := w.Kill(c, bad.index); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Kill(%d) = %v, want %q", bad.index, err, bad.want)
		}
	}
}

func TestStartForbiddenSaysWhichRule(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, jobName,
			errors.New(`User "system:serviceaccount:load:coord" cannot create resource "jobs"`))
	})
	o := testOptions()
	o.Client = cs
	e, _ := New(o)
	_, err := e.Start(ctx(t), testSpec())
	if err == nil {
		t.Fatal("Start succeeded against a 403")
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("the 403 is not kept in the chain: %v", err)
	}
	for _, want := range []string{"create jobs.batch/" + jobName + " in namespace load", `apiGroups: ["batch"], resources: [jobs], verbs: [create]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The Secret created before the 403 is gone again.
	if _, err := cs.CoreV1().Secrets("load").Get(ctx(t), jobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Secret after a failed Start: %v", err)
	}
}

func TestRemoveIsIdempotentAndTriesEverything(t *testing.T) {
	cs := fake.NewClientset()
	_, w := startFake(t, cs)
	c := ctx(t)
	// A Service that will not go: Remove says so but still deletes the rest.
	cs.PrependReactor("delete", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
	})
	err := w.Remove(c)
	if err == nil || !strings.Contains(err.Error(), "delete services/"+jobName) || !strings.Contains(err.Error(), "etcd timeout") {
		t.Fatalf("Remove = %v, want the Service's failure", err)
	}
	if _, err := cs.BatchV1().Jobs("load").Get(c, jobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("job after Remove: %v", err)
	}
	if _, err := cs.CoreV1().Secrets("load").Get(c, jobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret after Remove: %v", err)
	}
	cs.ReactionChain = cs.ReactionChain[1:] // the Service deletes again
	if err := w.Remove(c); err != nil {
		t.Fatalf("second Remove (Job, Secret and slice already gone): %v", err)
	}
	if err := w.Remove(c); err != nil {
		t.Fatalf("third Remove: %v", err)
	}
	var jobDelete *metav1.DeleteOptions
	for _, a := range cs.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "jobs" {
			o := a.(k8stesting.DeleteActionImpl).DeleteOptions
			jobDelete = &o
		}
	}
	if jobDelete == nil || jobDelete.PropagationPolicy == nil || *jobDelete.PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("job delete options %+v: want background propagation, so the pods go too", jobDelete)
	}
}

// blockingJobs is a Jobs client whose Create never answers until released
// and ignores its context: only the engine's own bound can end the wait.
type blockingJobs struct {
	batchtyped.JobInterface
	release chan struct{}
}

func (b blockingJobs) Create(ctx context.Context, j *batchv1.Job, o metav1.CreateOptions) (*batchv1.Job, error) {
	<-b.release
	return b.JobInterface.Create(context.Background(), j, o)
}

type blockingBatch struct {
	batchtyped.BatchV1Interface
	release chan struct{}
}

func (b blockingBatch) Jobs(ns string) batchtyped.JobInterface {
	return blockingJobs{b.BatchV1Interface.Jobs(ns), b.release}
}

type blockingClient struct {
	*fake.Clientset
	release chan struct{}
}

func (b blockingClient) BatchV1() batchtyped.BatchV1Interface {
	return blockingBatch{b.Clientset.BatchV1(), b.release}
}

func TestStartEndsWithItsContext(t *testing.T) {
	cs := fake.NewClientset()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	o := testOptions()
	o.Client = blockingClient{cs, release}
	e, _ := New(o)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := e.Start(c, testSpec())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want the context's deadline", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Start took %v after its context ended", took)
	}
	if !strings.Contains(err.Error(), "create jobs.batch/"+jobName) {
		t.Errorf("error %q does not say what was attempted", err)
	}
	if _, err := cs.CoreV1().Secrets("load").Get(ctx(t), jobName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Secret after Start timed out: %v", err)
	}
}

// Every request the engine makes is allowed by Rules, and every rule is
// used: the documented Role is neither short nor generous.
func TestRulesAreExactlyWhatTheEngineUses(t *testing.T) {
	cs := fake.NewClientset()
	_, w := startFake(t, cs)
	addPod(t, cs, 0, corev1.PodRunning, nil)
	c := ctx(t)
	if _, err := w.Status(c); err != nil {
		t.Fatal(err)
	}
	if err := w.Kill(c, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(c); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, a := range cs.Actions() {
		r := a.GetResource()
		if !allowed(Rules, a.GetVerb(), r.Group, r.Resource) {
			t.Errorf("%s %s.%s is not in Rules", a.GetVerb(), r.Resource, r.Group)
		}
		used[a.GetVerb()+" "+r.Group+"/"+r.Resource] = true
	}
	for _, r := range Rules {
		for _, v := range r.Verbs {
			if k := v + " " + r.APIGroups[0] + "/" + r.Resources[0]; !used[k] {
				t.Errorf("Rules grant %q, which the engine never uses", k)
			}
		}
	}
}

func allowed(rules []rbacv1.PolicyRule, verb, group, resource string) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v || x == rbacv1.VerbAll {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if has(r.Verbs, verb) && has(r.APIGroups, group) && has(r.Resources, resource) {
			return true
		}
	}
	return false
}
