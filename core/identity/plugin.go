package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/internal/filewatch"
	"github.com/irsa-broker/irsa-broker/plugins/builtin/names"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// PluginOptions say which identity provider to run and how.
type PluginOptions struct {
	// Name is a built-in provider (domino, oidc, static), served by
	// re-executing the broker as `irsa-broker plugin NAME`, or the path of a
	// third-party plugin binary (anything containing a path separator).
	Name string
	// SHA256 pins a third-party binary: hex SHA-256 of the file, checked at
	// every (re)start. Ignored for built-ins.
	SHA256 string
	// Config is the YAML handed to the provider's Configure.
	Config []byte
	// ConfigPath, instead of Config, names a YAML file: read at start and
	// handed to the running provider again whenever its content changes
	// (internal/filewatch: edits, renames, ConfigMap ..data swaps); a broken
	// version is logged and the previous one stays.
	ConfigPath string
	// Executable is the broker binary that serves the built-ins (default:
	// os.Executable()).
	Executable string
	// Provider names this provider in logs, metrics and identities (the
	// `name` of an --identity-providers entry). Default: the built-in's name,
	// or the binary's base name.
	Provider string
	// Builtins are the names Executable serves; the composition root passes
	// builtin.Names(). Default: names.All(), the same list, so the host
	// imports no provider.
	Builtins []string
	Logger   hclog.Logger
	Metrics  *metrics.Metrics
	// CallTimeout bounds every call into the plugin (default 5s).
	CallTimeout time.Duration
	// StartTimeout bounds starting and configuring the plugin (default 20s).
	StartTimeout time.Duration
	// HealthInterval is how often the plugin is probed, and ConfigPath
	// checked for changes besides file events (default 5s).
	HealthInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay between restarts of a
	// crashed plugin (defaults 200ms and 30s; it doubles per failed start).
	MinBackoff, MaxBackoff time.Duration
	// SocketDir is where the plugin's unix socket is created, in a private
	// subdirectory per plugin process that is removed when it stops
	// (default: os.TempDir()). It must be a writable directory; Open checks
	// it before starting anything.
	SocketDir string
	// Env names variables of the broker's environment that the plugin
	// process gets besides the allow-list (PATH, HOME, TMPDIR, TZ, CA
	// certificates, proxies, Go runtime settings: passedEnv); nothing else of
	// the broker's environment, AWS keys included, reaches it.
	Env []string
}

// passedEnv is what a plugin process gets of the broker's environment
// without asking: what a process needs to run and to reach the network
// (search path, home, temporary directory, time zone, CA certificates,
// proxies) and the Go runtime's tuning. Credentials never are; a plugin that
// needs a variable gets it through PluginOptions.Env. The host adds
// sdk.LogLevelEnv and go-plugin its handshake variables.
var passedEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK", "GORACE",
}

// socketPathMax is the longest unix socket path every supported OS accepts
// (sun_path is 108 bytes on Linux, 104 on the BSDs and macOS, NUL included).
const socketPathMax = 103

// socketSuffix is what the host and go-plugin add to SocketDir: the
// per-process directory and the socket's name, "/plugin-N/pluginN" with N up
// to 10 digits.
const socketSuffix = len("/plugin-") + 10 + len("/plugin") + 10

// Plugin is an identity provider running in a child process. It implements
// sdk.Provider, so it plugs into New; while the child is down (crashed, hung,
// restarting) calls fail at once with an *UnavailableError instead of waiting.
type Plugin struct {
	o        PluginOptions
	log      hclog.Logger
	builtin  bool
	checksum []byte

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	// cfgWatch watches ConfigPath (nil without one); cfgChanged says the
	// running plugin has not been handed its content yet, cfgKick wakes the
	// supervisor for it, watchDone is closed when the watch ends.
	cfgWatch   *filewatch.Watcher
	cfgChanged atomic.Bool
	cfgKick    chan struct{}
	watchDone  chan struct{}

	mu      sync.RWMutex
	cur     *instance
	config  []byte
	downErr error
	retryAt time.Time
	info    sdk.Info

	up       prometheus.Gauge
	restarts prometheus.Counter
	calls    prometheus.ObserverVec // by method and outcome
}

var _ sdk.Provider = (*Plugin)(nil)

// UnavailableError is returned while the plugin process is down. It wraps
// sdk.ErrUnavailable; RetryAfter is when the next restart is due.
type UnavailableError struct {
	Name       string
	RetryAfter time.Duration
	Cause      error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("identity plugin %s is restarting (retry in %s): %v", e.Name, e.RetryAfter.Round(time.Millisecond), e.Cause)
}

func (e *UnavailableError) Unwrap() []error { return []error{sdk.ErrUnavailable, e.Cause} }

// instance is one run of the child process.
type instance struct {
	client *plugin.Client
	prov   sdk.Provider
	pid    int
	exited chan struct{} // closed once stopped; releases the thread that started it
	once   sync.Once
	// sockDir holds the child's unix socket; removed once it is stopped.
	sockDir string
}

// Open starts the plugin, negotiates the protocol, hands it its config and
// supervises it until Close. A plugin that cannot start or rejects its
// config is an error here (invalid config wraps sdk.ErrInvalidConfig); once
// running, a crash is repaired by restarts with backoff.
func Open(ctx context.Context, o PluginOptions) (*Plugin, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 20 * time.Second
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Builtins == nil {
		o.Builtins = names.All()
	}
	p := &Plugin{o: o, done: make(chan struct{}), kick: make(chan struct{}, 1), cfgKick: make(chan struct{}, 1)}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	if err := p.checkProcessOptions(); err != nil {
		return nil, err
	}
	if p.o.Provider == "" {
		p.o.Provider = p.displayName()
	}
	p.log = o.Logger.Named("identity-plugin").With("provider", p.o.Provider, "plugin", p.displayName())
	p.config = o.Config
	if o.ConfigPath != "" {
		if o.Config != nil {
			return nil, fmt.Errorf("%w: identity plugin: set Config or ConfigPath, not both", sdk.ErrInvalidConfig)
		}
		// Watched from before the read, so no edit in between is missed.
		w, err := filewatch.New([]string{o.ConfigPath}, filewatch.Options{Poll: o.HealthInterval, Logger: p.log})
		if err != nil {
			return nil, fmt.Errorf("%w: identity config: %w", sdk.ErrInvalidConfig, err)
		}
		b, err := os.ReadFile(o.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("%w: identity config: %w", sdk.ErrInvalidConfig, err)
		}
		p.config, p.cfgWatch = b, w
	}
	p.registerMetrics(o.Metrics)

	sctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	inst, err := p.start(sctx)
	if err != nil {
		return nil, err
	}
	p.setUp(inst)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.supervise()
	if p.cfgWatch != nil {
		p.watchDone = make(chan struct{})
		go func() {
			defer close(p.watchDone)
			p.cfgWatch.Run(p.ctx, func() {
				p.cfgChanged.Store(true)
				select {
				case p.cfgKick <- struct{}{}:
				default:
				}
			})
		}()
	}
	return p, nil
}

func (p *Plugin) displayName() string {
	if p.builtin {
		return p.o.Name
	}
	return filepath.Base(p.o.Name)
}

// resolve decides between a built-in and a binary, and checks the binary.
func (p *Plugin) resolve() error {
	o := &p.o
	if o.Name == "" {
		return fmt.Errorf("%w: identity plugin: a name (%s) or a path is required", sdk.ErrInvalidConfig, strings.Join(o.Builtins, ", "))
	}
	if !strings.ContainsRune(o.Name, os.PathSeparator) && !strings.ContainsRune(o.Name, '/') {
		if !slices.Contains(o.Builtins, o.Name) {
			return fmt.Errorf("%w: identity plugin %q is not built in (built in: %s); give a path for a third-party plugin",
				sdk.ErrInvalidConfig, o.Name, strings.Join(o.Builtins, ", "))
		}
		p.builtin = true
		if o.Executable == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("identity plugin: locating the broker binary: %w", err)
			}
			o.Executable = exe
		}
		return nil
	}
	abs, err := filepath.Abs(o.Name)
	if err != nil {
		return fmt.Errorf("%w: identity plugin path: %w", sdk.ErrInvalidConfig, err)
	}
	o.Name = abs
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("%w: identity plugin: %w", sdk.ErrInvalidConfig, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: identity plugin %s is not an executable file", sdk.ErrInvalidConfig, abs)
	}
	if o.SHA256 != "" {
		sum, err := hex.DecodeString(strings.TrimSpace(o.SHA256))
		if err != nil || len(sum) != sha256.Size {
			return fmt.Errorf("%w: identity plugin sha256: want 64 hex digits", sdk.ErrInvalidConfig)
		}
		p.checksum = sum
		if err := verifyChecksum(abs, sum); err != nil {
			return err
		}
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkProcessOptions checks Env and that SocketDir can hold sockets, so a
// read-only or missing directory is a clear error before any plugin starts
// rather than the plugin's "plugin init error" at its first start.
func (p *Plugin) checkProcessOptions() error {
	o := &p.o
	for _, k := range o.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("%w: identity plugin env: %q is not a variable name", sdk.ErrInvalidConfig, k)
		}
	}
	if o.SocketDir == "" {
		o.SocketDir = os.TempDir()
	}
	dir, err := filepath.Abs(o.SocketDir)
	if err != nil {
		return fmt.Errorf("%w: identity plugin socket directory %s: %w", sdk.ErrInvalidConfig, o.SocketDir, err)
	}
	o.SocketDir = dir
	bad := func(err error) error {
		return fmt.Errorf("%w: identity plugin socket directory %s is not a writable directory: %w", sdk.ErrInvalidConfig, dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return bad(err)
	}
	if !st.IsDir() {
		return bad(errors.New("not a directory"))
	}
	probe, err := os.MkdirTemp(dir, "plugin-")
	if err != nil {
		return bad(err)
	}
	_ = os.Remove(probe)
	if len(dir)+socketSuffix > socketPathMax {
		return fmt.Errorf("%w: identity plugin socket directory %s is too long for unix socket paths (at most %d bytes)",
			sdk.ErrInvalidConfig, dir, socketPathMax-socketSuffix)
	}
	return nil
}

func verifyChecksum(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: identity plugin: %w", sdk.ErrInvalidConfig, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%w: identity plugin: %w", sdk.ErrInvalidConfig, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: identity plugin %s: sha256 is %x, pinned %x", sdk.ErrInvalidConfig, path, got, want)
	}
	return nil
}

// command is the child's command line and environment; its socket goes to sockDir.
func (p *Plugin) command(sockDir string) *exec.Cmd {
	var cmd *exec.Cmd
	if p.builtin {
		cmd = exec.Command(p.o.Executable, "plugin", p.o.Name)
	} else {
		cmd = exec.Command(p.o.Name)
	}
	cmd.Env = p.environ(sockDir)
	dieWithParent(cmd)
	return cmd
}

// environ is the child's environment (go-plugin appends its handshake
// variables; ClientConfig.SkipHostEnv keeps it from adding os.Environ()).
func (p *Plugin) environ(sockDir string) []string {
	var env []string
	for _, k := range slices.Concat(passedEnv, p.o.Env) {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// Set last, so they win over a variable of the same name named in Env.
	// The plugin's go-plugin creates its socket in PLUGIN_UNIX_SOCKET_DIR,
	// else in its os.TempDir().
	return append(env,
		sdk.LogLevelEnv+"="+levelName(p.o.Logger),
		plugin.EnvUnixSocketDir+"="+sockDir)
}

func levelName(l hclog.Logger) string {
	switch {
	case l.IsTrace():
		return "trace"
	case l.IsDebug():
		return "debug"
	case l.IsInfo():
		return "info"
	case l.IsWarn():
		return "warn"
	}
	return "error"
}

// start runs one instance: process, handshake, Info and Configure.
func (p *Plugin) start(ctx context.Context) (*instance, error) {
	p.mu.RLock()
	config := p.config
	p.mu.RUnlock()
	sockDir, err := os.MkdirTemp(p.o.SocketDir, "plugin-")
	if err != nil {
		return nil, fmt.Errorf("%w: starting identity plugin %s: socket directory: %w", sdk.ErrUnavailable, p.displayName(), err)
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.VersionedPlugins(nil),
		Cmd:              p.command(sockDir),
		SkipHostEnv:      true,
		// go-plugin v1.8.0 honours TempDir only with a RunnerFunc; with a Cmd
		// the socket directory reaches the plugin through environ.
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: p.o.SocketDir},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           p.log,
		AutoMTLS:         true,
		StartTimeout:     p.o.StartTimeout,
	}
	if p.checksum != nil {
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: p.checksum, Hash: sha256.New()}
	}
	inst := &instance{client: plugin.NewClient(cfg), exited: make(chan struct{}), sockDir: sockDir}
	if err := startOnLockedThread(inst); err != nil {
		inst.stop(false)
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("%w: identity plugin %s: %w", sdk.ErrInvalidConfig, p.displayName(), err)
		}
		if perr := protocolError(p.o.Provider, err); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("%w: starting identity plugin %s: %w", sdk.ErrUnavailable, p.displayName(), err)
	}
	if rc := inst.client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	fail := func(err error) (*instance, error) {
		inst.stop(false)
		return nil, err
	}
	rpc, err := inst.client.Client()
	if err != nil {
		return fail(fmt.Errorf("%w: identity plugin %s: %w", sdk.ErrUnavailable, p.displayName(), err))
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%w: identity plugin %s: %w", sdk.ErrUnavailable, p.displayName(), err))
	}
	prov, ok := raw.(sdk.Provider)
	if !ok {
		return fail(fmt.Errorf("identity plugin %s: dispensed %T", p.displayName(), raw))
	}
	inst.prov = prov
	info, err := prov.Info(ctx)
	if err != nil {
		return fail(fmt.Errorf("identity plugin %s: Info: %w", p.displayName(), err))
	}
	if err := prov.Configure(ctx, config); err != nil {
		return fail(fmt.Errorf("identity plugin %s: Configure: %w", p.displayName(), err))
	}
	p.mu.Lock()
	p.info = info
	p.mu.Unlock()
	p.log.Info("identity plugin started", "pid", inst.pid, "provider", info.Name, "version", info.Version,
		"protocol", inst.client.NegotiatedVersion())
	return inst, nil
}

// startOnLockedThread starts the child from a goroutine locked to its OS
// thread that stays until the child is stopped: Linux delivers the
// parent-death signal when the *thread* that forked the child exits, so that
// thread must live exactly as long as the child.
func startOnLockedThread(inst *instance) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		_, err := inst.client.Start()
		errc <- err
		if err == nil {
			<-inst.exited
		}
	}()
	return <-errc
}

// stop ends the instance: gracefully (ask, then kill after 2s) or at once.
func (in *instance) stop(graceful bool) {
	in.once.Do(func() {
		defer close(in.exited)
		kill := func() {
			if in.pid > 0 && !in.client.Exited() {
				if proc, err := os.FindProcess(in.pid); err == nil {
					_ = proc.Kill()
				}
			}
		}
		if !graceful {
			kill()
		}
		done := make(chan struct{})
		go func() { in.client.Kill(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second): // a hung child ignores the polite shutdown
			kill()
			<-done
		}
		_ = os.RemoveAll(in.sockDir) // a killed child leaves its socket behind
	})
}

func (p *Plugin) setUp(inst *instance) {
	p.mu.Lock()
	p.cur, p.downErr = inst, nil
	p.mu.Unlock()
	p.up.Set(1)
}

func (p *Plugin) setDown(err error, retryIn time.Duration) {
	p.mu.Lock()
	p.cur, p.downErr, p.retryAt = nil, err, time.Now().Add(retryIn)
	p.mu.Unlock()
	p.up.Set(0)
}

// live returns the running instance or, while there is none, the error to answer with.
func (p *Plugin) live() (*instance, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur != nil {
		return p.cur, nil
	}
	if p.downErr == nil { // closed
		return nil, fmt.Errorf("%w: identity plugin %s is closed", sdk.ErrUnavailable, p.displayName())
	}
	return nil, &UnavailableError{Name: p.displayName(), RetryAfter: max(time.Until(p.retryAt), 0), Cause: p.downErr}
}

// supervise probes the child, restarts it with backoff when it is gone and
// hands the plugin a changed ConfigPath, until Close.
func (p *Plugin) supervise() {
	defer close(p.done)
	backoff := p.o.MinBackoff
	timer := time.NewTimer(p.o.HealthInterval)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			p.mu.Lock()
			inst := p.cur
			p.cur, p.downErr = nil, nil
			p.mu.Unlock()
			p.up.Set(0)
			if inst != nil {
				inst.stop(true)
			}
			return
		case <-timer.C:
		case <-p.kick:
		case <-p.cfgKick:
			// A new ConfigPath: handed over now if the plugin runs, else
			// once it runs again (the probe below).
			p.mu.RLock()
			inst := p.cur
			p.mu.RUnlock()
			if inst != nil {
				p.reloadConfig(inst)
			}
			continue
		}
		p.mu.RLock()
		inst := p.cur
		p.mu.RUnlock()
		next := p.o.HealthInterval
		if inst != nil {
			if err := p.probe(inst); err != nil {
				p.log.Error("identity plugin is down; restarting", "pid", inst.pid, "error", err)
				p.setDown(err, backoff)
				inst.stop(false)
				next = backoff
			} else {
				p.reloadConfig(inst)
			}
		} else {
			ctx, cancel := context.WithTimeout(p.ctx, p.o.StartTimeout)
			fresh, err := p.start(ctx)
			cancel()
			if err != nil {
				backoff = min(backoff*2, p.o.MaxBackoff)
				p.log.Error("identity plugin restart failed", "error", err, "retry_in", backoff)
				p.setDown(err, backoff)
				next = backoff
			} else {
				p.restarts.Inc()
				p.setUp(fresh)
				backoff = p.o.MinBackoff
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// probe checks that the child lives and answers within CallTimeout.
func (p *Plugin) probe(inst *instance) error {
	if inst.client.Exited() {
		return errors.New("the plugin process exited")
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.o.CallTimeout)
	defer cancel()
	if _, err := inst.prov.Info(ctx); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	return nil
}

// reloadConfig hands the running plugin ConfigPath's content if it changed
// since it was last handed over.
func (p *Plugin) reloadConfig(inst *instance) {
	if !p.cfgChanged.Swap(false) {
		return
	}
	b, err := os.ReadFile(p.o.ConfigPath)
	if err != nil {
		p.log.Error("identity config not reloaded", "path", p.o.ConfigPath, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.o.CallTimeout)
	defer cancel()
	if err := inst.prov.Configure(ctx, b); err != nil {
		p.log.Error("identity config rejected; the previous one stays", "path", p.o.ConfigPath, "error", err)
		return
	}
	p.mu.Lock()
	p.config = b
	p.mu.Unlock()
	p.log.Info("identity config reloaded", "path", p.o.ConfigPath)
}

// call runs fn against the live instance with the per-call timeout and
// records its latency; an outage wakes the supervisor at once.
func (p *Plugin) call(ctx context.Context, method string, fn func(context.Context, sdk.Provider) error) error {
	inst, err := p.live()
	if err != nil {
		p.calls.WithLabelValues(method, "down").Observe(0)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.CallTimeout)
	defer cancel()
	start := time.Now()
	err = fn(ctx, inst.prov)
	p.calls.WithLabelValues(method, outcome(err)).Observe(time.Since(start).Seconds())
	if errors.Is(err, sdk.ErrUnavailable) {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return err
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, sdk.ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, sdk.ErrInvalidConfig):
		return "invalid_config"
	case errors.Is(err, sdk.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// Info asks the running plugin (a health check as well).
func (p *Plugin) Info(ctx context.Context) (sdk.Info, error) {
	var info sdk.Info
	err := p.call(ctx, "info", func(ctx context.Context, prov sdk.Provider) (err error) {
		info, err = prov.Info(ctx)
		return err
	})
	return info, err
}

// Configure reconfigures the running plugin; later restarts use the new config.
func (p *Plugin) Configure(ctx context.Context, config []byte) error {
	err := p.call(ctx, "configure", func(ctx context.Context, prov sdk.Provider) error {
		return prov.Configure(ctx, config)
	})
	if err == nil {
		p.mu.Lock()
		p.config = config
		p.mu.Unlock()
	}
	return err
}

// Authenticate asks the running plugin who presented creds.
func (p *Plugin) Authenticate(ctx context.Context, creds sdk.Credentials) (sdk.Identity, error) {
	var id sdk.Identity
	err := p.call(ctx, "authenticate", func(ctx context.Context, prov sdk.Provider) (err error) {
		id, err = prov.Authenticate(ctx, creds)
		return err
	})
	return id, err
}

// Healthy reports whether the plugin runs and answers.
func (p *Plugin) Healthy(ctx context.Context) error {
	_, err := p.Info(ctx)
	return err
}

// Describe is what the plugin said about itself when it last started.
func (p *Plugin) Describe() sdk.Info {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.info
}

// PID is the child's process id (0 while it is down).
func (p *Plugin) PID() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Close stops the supervisor and the child (politely, then by force) and
// waits for both.
func (p *Plugin) Close() error {
	p.cancel()
	<-p.done
	if p.watchDone != nil {
		<-p.watchDone
	}
	return nil
}

// registerMetrics makes the plugin's series, labelled with its provider
// name (bounded: the configured providers). Plugins on one registry share
// the vectors.
func (p *Plugin) registerMetrics(m *metrics.Metrics) {
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "irsa_identity_plugin_up", Help: "1 while the identity plugin process runs and answers, by provider."}, []string{"provider"})
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "irsa_identity_plugin_restarts_total", Help: "Restarts of an identity plugin after a crash or a failed health check, by provider."}, []string{"provider"})
	calls := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "irsa_identity_plugin_call_duration_seconds",
		Help:    "Latency of calls into an identity plugin by provider, method and outcome (down: answered without calling, the plugin is restarting).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"provider", "method", "outcome"})
	if m != nil {
		up = metrics.MustRegister(m.Registry, up)
		restarts = metrics.MustRegister(m.Registry, restarts)
		calls = metrics.MustRegister(m.Registry, calls)
	}
	name := p.o.Provider
	p.up, p.restarts = up.WithLabelValues(name), restarts.WithLabelValues(name)
	p.calls = calls.MustCurryWith(prometheus.Labels{"provider": name})
}
