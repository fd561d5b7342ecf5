package kubernetes

import (
	"fmt"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// FromKubeconfig makes the engine from a kubeconfig the way kubectl finds
// one: path if given, else $KUBECONFIG, else ~/.kube/config, else the
// in-cluster service account (a coordinator running in a pod). namespace
// empty takes the current context's namespace ("default" if it names
// none). No request is made: a wrong server shows at Start.
func FromKubeconfig(path, namespace string, opts Options) (*Engine, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	overrides := &clientcmd.ConfigOverrides{}
	overrides.Context.Namespace = namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	where := "the default kubeconfig ($KUBECONFIG, ~/.kube/config or in-cluster)"
	if path != "" {
		where = "kubeconfig " + path
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: loading %s: %w", where, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: the namespace of %s: %w", where, err)
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes engine: a client for %s: %w", where, err)
	}
	opts.Client, opts.Namespace = client, ns
	return New(opts)
}
