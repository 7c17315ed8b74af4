package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the harness started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts bin with its output in <Dir>/logs/<name>.log. The process
// dies with the test binary, even when that crashes.
func (c *Cluster) start(name, bin string, args ...string) (*proc, error) {
	if err := os.MkdirAll(c.path("logs"), 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(c.LogPath(name))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("clustertest: starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return p, nil
}

// startInNS starts bin inside the node's network namespace (nsenter joins
// the namespace and execs bin: same process, same Pdeathsig).
func (c *Cluster) startInNS(name, bin string, args ...string) (*proc, error) {
	return c.start(name, "nsenter", append([]string{"--net=" + c.net.nsPath(), "--", bin}, args...)...)
}

// exited reports whether p has stopped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, after grace, SIGKILL to p's process group.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// LogPath is where the component's output goes.
func (c *Cluster) LogPath(name string) string { return filepath.Join(c.path("logs"), name+".log") }

// LogTail returns the end of a component's log, for failure messages.
func (c *Cluster) LogTail(name string) string {
	b, _ := os.ReadFile(c.LogPath(name))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func runOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// processesMentioning lists the pids whose command line contains s (this
// process excepted).
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}
