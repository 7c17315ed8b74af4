package images_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

// The images as docs/design/images.md describes them.
var want = map[string]struct {
	entrypoint []string
	user       string
	files      map[string]int64 // path in the layer → permission bits (with sticky)
}{
	"irsa-broker": {
		entrypoint: []string{"/usr/local/bin/irsa-broker"},
		user:       "65532:65532",
		files: map[string]int64{"usr/local/bin/irsa-broker": 0o755, "tmp/": 0o1777,
			"etc/ssl/certs/ca-certificates.crt": 0o644, "etc/passwd": 0o644},
	},
	"irsa-sidecar": {
		entrypoint: []string{"/usr/local/bin/irsa-sidecar"},
		user:       "65532:65532",
		files: map[string]int64{"usr/local/bin/irsa-sidecar": 0o755, "usr/local/bin/irsactl": 0o755,
			"tmp/": 0o1777, "etc/ssl/certs/ca-certificates.crt": 0o644},
	},
	"pause": {
		entrypoint: []string{"/pause"},
		user:       "65535:65535",
		files:      map[string]int64{"pause": 0o755},
	},
	// IRSA_IMAGES_EXTRA: a test's stand-in, in the services' shape.
	"extra": {
		entrypoint: []string{"/usr/local/bin/extra"},
		user:       "65532:65532",
		files:      map[string]int64{"usr/local/bin/extra": 0o755, "tmp/": 0o1777},
	},
}

const version = "v0.0.0-imagestest"

// TestImages builds the images with build.sh (as `make images` does), checks
// each archive's layout and configuration, imports the archives into a
// containerd of the test's own, and runs a container of each with ctr.
func TestImages(t *testing.T) {
	need(t, "bash", "go", "git", "buildah", "tar", "containerd", "containerd-shim-runc-v2", "runc", "ctr")
	if os.Geteuid() != 0 {
		t.Fatal("containerd needs root: run the tests as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	out := t.TempDir()
	start := time.Now()
	build := exec.CommandContext(ctx, "bash", "build.sh")
	build.Env = append(os.Environ(), "IRSA_IMAGES_DIR="+out, "IRSA_IMAGE_VERSION="+version, "IRSA_IMAGES_EXTRA=extra=./deploy/images/pause")
	var stdout, stderr bytes.Buffer
	build.Stdout, build.Stderr = &stdout, &stderr
	if err := build.Run(); err != nil {
		t.Fatalf("bash deploy/images/build.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("build.sh: %s", time.Since(start).Round(time.Millisecond))
	archives := strings.Fields(stdout.String())
	slices.Sort(archives)
	var wantPaths []string
	for name := range want {
		wantPaths = append(wantPaths, filepath.Join(out, name+".oci.tar"))
	}
	slices.Sort(wantPaths)
	if !slices.Equal(archives, wantPaths) {
		t.Fatalf("build.sh printed %q, want %q", archives, wantPaths)
	}

	for _, a := range archives {
		name := strings.TrimSuffix(filepath.Base(a), ".oci.tar")
		t.Run("layout/"+name, func(t *testing.T) { checkArchive(t, a, name) })
	}

	c := startContainerd(t, ctx)
	for _, a := range archives {
		name := strings.TrimSuffix(filepath.Base(a), ".oci.tar")
		c.ctr(t, "images", "import", "--base-name", name, a)
	}
	listed := c.ctr(t, "images", "ls", "-q")
	for name := range want {
		for _, tag := range []string{version, "dev"} {
			if !slices.Contains(strings.Fields(listed), name+":"+tag) {
				t.Errorf("ctr images ls: no %s:%s in\n%s", name, tag, listed)
			}
		}
	}
	if t.Failed() {
		return
	}

	// The services start in their images, as their users, on a read-only root.
	if got := c.ctr(t, c.run(true, "irsa-broker:"+version, "broker", "/usr/local/bin/irsa-broker", "version")...); strings.TrimSpace(got) != version {
		t.Errorf("irsa-broker version printed %q, want %q", got, version)
	}
	if got := c.ctr(t, c.run(true, "irsa-sidecar:dev", "sidecar", "/usr/local/bin/irsa-sidecar", "version")...); strings.TrimSpace(got) != version {
		t.Errorf("irsa-sidecar version printed %q, want %q", got, version)
	}
	if got := c.ctr(t, c.run(true, "irsa-sidecar:dev", "irsactl", "/usr/local/bin/irsactl", "help")...); !strings.Contains(got, "irsactl whoami") {
		t.Errorf("irsactl help printed %q", got)
	}

	// pause runs until SIGTERM and then exits 0.
	run := exec.CommandContext(ctx, "ctr", append([]string{"-a", c.sock, "-n", "k8s.io"}, c.run(false, "pause:dev", "pause")...)...)
	var runErr bytes.Buffer
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Process.Kill() })
	polltest.Until(t, "the pause task running", func() bool {
		return strings.Contains(c.ctrQuiet("tasks", "ls"), "RUNNING")
	})
	// As PID 1, pause ignores SIGTERM until its handler is installed: send
	// it until the task exits (the kernel drops a signal without handler).
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	var runErrAfter error
	polltest.Until(t, "pause to exit on SIGTERM", func() bool {
		select {
		case runErrAfter = <-done:
			return true
		default:
			c.ctrQuiet("tasks", "kill", "--signal", "SIGTERM", "pause")
			return false
		}
	})
	if runErrAfter != nil {
		t.Errorf("pause after SIGTERM: %v (want exit 0)\n%s", runErrAfter, runErr.String())
	}
}

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s not found: install it with `bash test/testenv/setup.sh --tools` (make testenv)", c)
		}
	}
}

// checkArchive reads an OCI archive: both tags, the image configuration and
// the files of its one layer.
func checkArchive(t *testing.T, path, name string) {
	w := want[name]
	blobs := map[string][]byte{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		blobs[strings.TrimPrefix(h.Name, "./")] = b
	}
	blob := func(digest string) []byte {
		b, ok := blobs["blobs/"+strings.Replace(digest, ":", "/", 1)]
		if !ok {
			t.Fatalf("%s: blob %s missing", path, digest)
		}
		return b
	}
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	var index struct{ Manifests []descriptor }
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil {
		t.Fatalf("%s: index.json: %v", path, err)
	}
	var tags []string
	for _, m := range index.Manifests {
		tags = append(tags, m.Annotations["org.opencontainers.image.ref.name"])
		if m.Digest != index.Manifests[0].Digest {
			t.Errorf("%s: tags name different manifests: %+v", path, index.Manifests)
		}
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"dev", version}) {
		t.Errorf("%s: tags %q, want dev and %s", path, tags, version)
	}
	var manifest struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	var config struct {
		Architecture, OS string
		Config           struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
			WorkingDir string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal(blob(manifest.Config.Digest), &config); err != nil {
		t.Fatal(err)
	}
	cc := config.Config
	if config.OS != "linux" || !slices.Equal(cc.Entrypoint, w.entrypoint) || len(cc.Cmd) != 0 || cc.User != w.user || cc.WorkingDir != "/" {
		t.Errorf("%s: config %+v, want entrypoint %q, no cmd, user %s, workdir /", path, config, w.entrypoint, w.user)
	}
	if name != "pause" && !slices.Contains(cc.Env, "TMPDIR=/tmp") {
		t.Errorf("%s: env %q lacks TMPDIR=/tmp", path, cc.Env)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":   name,
		"org.opencontainers.image.version": version,
	} {
		if cc.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", path, k, cc.Labels[k], v)
		}
	}
	for _, k := range []string{"org.opencontainers.image.revision", "org.opencontainers.image.source"} {
		if cc.Labels[k] == "" {
			t.Errorf("%s: label %s missing", path, k)
		}
	}

	if len(manifest.Layers) != 1 {
		t.Fatalf("%s: %d layers, want 1", path, len(manifest.Layers))
	}
	var layer io.Reader = bytes.NewReader(blob(manifest.Layers[0].Digest))
	if strings.HasSuffix(manifest.Layers[0].MediaType, "+gzip") {
		if layer, err = gzip.NewReader(layer); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]int64{}
	lr := tar.NewReader(layer)
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: layer: %v", path, err)
		}
		n := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(n, "/") {
			n += "/"
		}
		files[n] = h.Mode & 0o7777
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %s owned by %d, want root", path, n, h.Uid)
		}
	}
	for p, mode := range w.files {
		got, ok := files[p]
		if !ok {
			t.Errorf("%s: no %s in the layer", path, p)
		} else if got != mode {
			t.Errorf("%s: %s has mode %o, want %o", path, p, got, mode)
		}
	}
	for _, sh := range []string{"bin/sh", "bin/", "usr/bin/"} {
		if _, ok := files[sh]; ok {
			t.Errorf("%s: has %s; the images are FROM scratch", path, sh)
		}
	}
}

type containerd struct {
	dir, sock string
	cgroup    string // the parent of the containers' cgroups, in every v1 hierarchy
}

// run is the arguments of `ctr run --rm [--read-only] IMAGE ID ARGS...`, with
// the FIFOs, runc's state and the cgroups kept where the test removes them
// (ctr's defaults are under /run/containerd and /sys/fs/cgroup/*/k8s.io).
func (c *containerd) run(readOnly bool, image, id string, args ...string) []string {
	r := []string{"run", "--rm", "--fifo-dir", filepath.Join(c.dir, "fifo"), "--runc-root", filepath.Join(c.dir, "runc"),
		"--cgroup", "/" + c.cgroup + "/" + id}
	if readOnly {
		r = append(r, "--read-only")
	}
	return append(append(r, image, id), args...)
}

// startContainerd runs a containerd with its own root, state, socket and
// configuration under a temporary directory, and removes all of it (process,
// mounts, files) when the test ends.
func startContainerd(t *testing.T, ctx context.Context) *containerd {
	dir, err := os.MkdirTemp("", "irsa-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, sock: filepath.Join(dir, "containerd.sock"), cgroup: filepath.Base(dir)}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "opt"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("containerd log (tail):\n%s", tail(string(b), 40))
			}
		}
		for _, m := range mountsUnder(dir) {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", m, err)
			}
		}
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + c.cgroup)
		for _, p := range parents {
			if err := os.Remove(p); err != nil {
				t.Errorf("cgroup left: %v", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
		if left := mountsUnder(dir); len(left) > 0 {
			t.Errorf("mounts left: %q", left)
		}
	})
	polltest.UntilErr(t, "containerd answering on "+c.sock, func() (bool, error) {
		if err := exec.CommandContext(ctx, "ctr", "-a", c.sock, "version").Run(); err != nil {
			b, _ := os.ReadFile(logf.Name())
			return false, fmt.Errorf("%w\n%s", err, tail(string(b), 40))
		}
		return true, nil
	})
	return c
}

func (c *containerd) ctr(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"-a", c.sock, "-n", "k8s.io"}, args...)
	cmd := exec.Command("ctr", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ctr %s: %v\n%s%s", strings.Join(full, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (c *containerd) ctrQuiet(args ...string) string {
	out, _ := exec.Command("ctr", append([]string{"-a", c.sock, "-n", "k8s.io"}, args...)...).Output()
	return string(out)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			ms = append(ms, fields[4])
		}
	}
	slices.SortFunc(ms, func(a, b string) int { return len(b) - len(a) })
	return ms
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
