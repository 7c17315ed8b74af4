package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/test/clustertest"
)

const (
	fieldNS   = "domino-field"
	computeNS = "domino-compute"
	brokerSA  = "irsa" // v1.8's name, kept by the chart
	// brokerDeployment is the broker's Deployment (env.name).
	brokerDeployment = "irsa"
	// sidecarContainer is the sidecar's container: v1.8's name, kept by the Mutation.
	sidecarContainer = "aws-config-file-generator"
)

var env struct {
	root        string // the repository
	c           *clustertest.Cluster
	cs          kubernetes.Interface
	version     string // the images' version tag
	sim         *awssim.Server
	simURL      string
	provider    string
	providerARN string
	proxyARN    string
	assetARN    string
	dominoURL   string
	brokerCA    []byte
	closers     []func()
	figures     []string
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) (code int) {
	_, self, _, _ := runtime.Caller(0)
	env.root = filepath.Join(filepath.Dir(self), "..", "..")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "cluster test setup: %v\n", err)
		if env.c != nil {
			for _, n := range []string{"kubelet", "containerd", "kube-proxy", "kube-controller-manager", "coredns"} {
				fmt.Fprintf(os.Stderr, "--- %s (end of log)\n%s\n", n, env.c.LogTail(n))
			}
		}
		return 1
	}
	start := time.Now()
	images, err := buildImages(ctx)
	if err != nil {
		return fail(err)
	}
	figure("image build (deploy/images/build.sh)", time.Since(start))
	start = time.Now()
	env.c, err = clustertest.Start(ctx, clustertest.Options{Images: images, PauseImage: "pause:" + env.version,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	defer func() {
		for i := len(env.closers) - 1; i >= 0; i-- {
			env.closers[i]()
		}
		if env.c == nil {
			return
		}
		if err := env.c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster stop: %v\n", err)
			code = 1
		}
		if left := env.c.Leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "the cluster left behind:\n  %s\n", strings.Join(left, "\n  "))
			code = 1
		}
		for _, f := range env.figures {
			fmt.Fprintln(os.Stderr, f)
		}
	}()
	if err != nil {
		return fail(err)
	}
	figure("cold cluster start (control plane, node Ready, images imported)", time.Since(start))
	for _, t := range env.c.Timings {
		figure("  "+t.Phase, t.Duration)
	}
	env.cs = env.c.Clientset
	start = time.Now()
	for _, step := range []func() error{startAWS, startDomino} {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, 4*time.Minute)
	defer dcancel()
	if err := deployBroker(dctx); err != nil {
		printPods(fieldNS)
		return fail(err)
	}
	figure("broker deployed, 3 replicas Ready through their HTTPS probes", time.Since(start))
	return m.Run()
}

// figure records a wall time for the summary printed at the end.
func figure(what string, d time.Duration) {
	env.figures = append(env.figures, fmt.Sprintf("figure: %-66s %8.1fs", what, d.Seconds()))
}

// buildImages builds the project's images and the test's Domino stand-in.
func buildImages(ctx context.Context) ([]string, error) {
	// The version is fixed first and handed to the build: a commit made
	// while the images build must not change the tags the test expects.
	v, err := exec.CommandContext(ctx, "bash", filepath.Join(env.root, "deploy", "images", "build.sh"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("deploy/images/build.sh --version: %w", err)
	}
	env.version = strings.TrimSpace(string(v))
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(env.root, "deploy", "images", "build.sh"))
	cmd.Env = append(os.Environ(), "IRSA_IMAGES_EXTRA=domino-proxy=./test/cluster/dominoproxy", "IRSA_IMAGE_VERSION="+env.version)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("deploy/images/build.sh: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// printPods writes the state and the end of the logs of every pod of ns,
// for a failure.
func printPods(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pods of %s: %v\n", ns, err)
		return
	}
	tail := int64(30)
	for _, p := range pods.Items {
		fmt.Fprintf(os.Stderr, "--- pod %s/%s %s: %s\n", ns, p.Name, p.Status.Phase, containerStates(&p))
		for _, c := range p.Spec.Containers {
			out, err := env.cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail}).DoRaw(ctx)
			fmt.Fprintf(os.Stderr, "    %s log (%v):\n%s\n", c.Name, err, out)
		}
	}
}
