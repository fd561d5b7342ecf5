package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/octoha/octoha/harness/loaders"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Status reports one WorkerState per index 0..Count-1: from the index's
// pod when there is one, else from the Job's completed and failed indexes
// and its conditions (a deleted pod leaves only those).
func (w *workers) Status(ctx context.Context) ([]loaders.WorkerState, error) {
	job, err := call(ctx, w.opts.callTimeout(), w.act("get", "batch", "jobs"), func(ctx context.Context) (*batchv1.Job, error) {
		return w.opts.Client.BatchV1().Jobs(w.ns).Get(ctx, Name(w.runID), metav1.GetOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: status of run %s: %w", w.runID, err)
	}
	pods, err := w.pods(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: status of run %s: %w", w.runID, err)
	}
	completed, err := parseIndexes(job.Status.CompletedIndexes, w.count)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: status of run %s: the Job's completedIndexes: %w", w.runID, err)
	}
	failed, err := parseIndexes(ptrString(job.Status.FailedIndexes), w.count)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: status of run %s: the Job's failedIndexes: %w", w.runID, err)
	}
	jobFailed := jobCondition(job, batchv1.JobFailed)
	out := make([]loaders.WorkerState, w.count)
	for i := range out {
		st := loaders.WorkerState{Index: i}
		switch p := current(pods[i]); {
		case p != nil:
			st.ID = p.Name
			st.State, st.Message = podState(p)
		case completed[i]:
			st.State = loaders.StateComplete
		case failed[i]:
			st.State, st.Message = loaders.StateFailed, "the index failed and its pod is gone"
		case jobFailed != nil:
			st.State, st.Message = loaders.StateFailed, fmt.Sprintf("job failed: %s: %s", jobFailed.Reason, jobFailed.Message)
		default:
			st.State, st.Message = loaders.StatePending, "no pod yet"
		}
		out[i] = st
	}
	return out, nil
}

// podIndex reads the worker index the Job controller gave the pod.
func podIndex(p corev1.Pod) (int, bool) {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = p.Labels[batchv1.JobCompletionIndexAnnotation] // also a label since Kubernetes 1.28
	}
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// current picks the pod that speaks for an index: one not being deleted
// before one that is, then the newest.
func current(pods []corev1.Pod) *corev1.Pod {
	if len(pods) == 0 {
		return nil
	}
	sorted := append([]corev1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(a, b int) bool {
		da, db := sorted[a].DeletionTimestamp != nil, sorted[b].DeletionTimestamp != nil
		if da != db {
			return !da
		}
		return sorted[b].CreationTimestamp.Before(&sorted[a].CreationTimestamp)
	})
	return &sorted[0]
}

// podState maps a pod to a worker state and the reason worth showing.
func podState(p *corev1.Pod) (string, string) {
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return loaders.StateComplete, ""
	case corev1.PodFailed:
		return loaders.StateFailed, failureMessage(p)
	}
	if p.DeletionTimestamp != nil {
		return loaders.StateFailed, "pod is being deleted"
	}
	switch p.Status.Phase {
	case corev1.PodRunning:
		return loaders.StateRunning, ""
	case corev1.PodUnknown:
		return loaders.StatePending, "pod phase Unknown: its node stopped reporting"
	}
	return loaders.StatePending, pendingMessage(p)
}

func failureMessage(p *corev1.Pod) string {
	var parts []string
	if p.Status.Reason != "" || p.Status.Message != "" {
		parts = append(parts, strings.TrimSpace(p.Status.Reason+" "+p.Status.Message))
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			m := fmt.Sprintf("container %s exited %d", cs.Name, t.ExitCode)
			if t.Reason != "" {
				m += " (" + t.Reason + ")"
			}
			if t.Message != "" {
				m += ": " + t.Message
			}
			parts = append(parts, m)
		}
	}
	if len(parts) == 0 {
		return "pod failed"
	}
	return strings.Join(parts, "; ")
}

func pendingMessage(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if wt := cs.State.Waiting; wt != nil && wt.Reason != "" {
			return strings.TrimSuffix(wt.Reason+": "+wt.Message, ": ")
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSuffix(c.Reason+": "+c.Message, ": ")
		}
	}
	return "pod pending"
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// parseIndexes reads the Job status's interval list ("1,3-5").
func parseIndexes(s string, n int) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
		}
		if a < 0 || b < a || b >= n {
			return nil, fmt.Errorf("%q: interval %s is outside 0..%d", s, part, n-1)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
