package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/octoha/octoha/harness/loaders"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Files Emit writes. kubectl applies a directory's files in name order:
// the namespace, then the Secret the pods read at start, then the rest.
const (
	NamespaceFile = "00-namespace.yaml"
	SecretFile    = "10-secret.yaml"
	LoadersFile   = "20-loaders.yaml"
)

// Manifests is the multi-document YAML of every object of one run except
// the Secret (SecretManifest has it): the Namespace with
// opts.CreateNamespace, the headless Service and its EndpointSlice with a
// coordinator port, and the Job. It holds no secret value.
func Manifests(spec loaders.WorkerSpec, opts Options) ([]byte, error) {
	obj, err := build(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("kubernetes manifests: %w", err)
	}
	var docs []any
	if opts.CreateNamespace {
		docs = append(docs, namespaceObject(obj.namespace))
	}
	if obj.service != nil {
		docs = append(docs, obj.service, obj.endpointSlice)
	}
	docs = append(docs, obj.job)
	return render(header(spec, obj.namespace), docs)
}

// SecretManifest is the Secret with the workers' environment (the API key,
// the join token): write it only to a file only its owner reads.
func SecretManifest(spec loaders.WorkerSpec, opts Options) ([]byte, error) {
	obj, err := build(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("kubernetes manifests: %w", err)
	}
	s := obj.secret.DeepCopy()
	s.StringData = make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		s.StringData[k] = string(v)
	}
	s.Data = nil
	return render("# The loader workers' environment. It holds secrets: keep this file 0600, delete it once applied.\n", []any{s})
}

// Emit writes the run's manifests into dir for `kubectl apply -f dir` and
// returns the paths written. The Secret goes into its own file, mode 0600;
// nothing secret is returned or printed.
func Emit(dir string, spec loaders.WorkerSpec, opts Options) ([]string, error) {
	obj, err := build(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("emitting kubernetes manifests: %w", err)
	}
	withoutNS := opts
	withoutNS.CreateNamespace = false // the namespace gets its own, first, file
	rest, err := Manifests(spec, withoutNS)
	if err != nil {
		return nil, err
	}
	secret, err := SecretManifest(spec, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("emitting kubernetes manifests: creating %s: %w", dir, err)
	}
	var written []string
	if opts.CreateNamespace {
		ns, err := render("", []any{namespaceObject(obj.namespace)})
		if err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, NamespaceFile), ns, 0o644); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, NamespaceFile))
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{SecretFile, secret, 0o600}, {LoadersFile, rest, 0o644}} {
		p := filepath.Join(dir, f.name)
		if err := writeFile(p, f.data, f.mode); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return written, nil
}

// writeFile writes data with mode, also when the file existed with a
// looser one (os.WriteFile keeps an existing file's mode).
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("emitting kubernetes manifests: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("emitting kubernetes manifests: setting mode of %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("emitting kubernetes manifests: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("emitting kubernetes manifests: writing %s: %w", path, err)
	}
	return nil
}

func namespaceObject(ns string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
	}
}

func header(spec loaders.WorkerSpec, ns string) string {
	return fmt.Sprintf("# octoha loader workers of run %s (%d workers).\n"+
		"# Apply: kubectl apply -f DIR (the Secret file first; Emit names the files so).\n"+
		"# Remove: kubectl delete -n %s job,service,endpointslice,secret -l %s\n",
		spec.RunID, spec.Count, ns, RunSelector(spec.RunID))
}

// render writes objects as YAML documents, without the empty status
// stanzas the API types would carry.
func render(head string, docs []any) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString(head)
	for _, d := range docs {
		raw, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encoding a manifest: %w", err)
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // int64 fields stay exact
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("encoding a manifest: %w", err)
		}
		delete(m, "status")
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encoding a manifest as YAML: %w", err)
		}
		out.WriteString("---\n")
		out.Write(y)
	}
	return out.Bytes(), nil
}
