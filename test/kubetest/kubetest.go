package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start. Zero values are fine.
type Options struct {
	// Dir holds keys, certificates, etcd's data and the logs; a new
	// temporary directory (removed by Stop) when empty.
	Dir string
	// APIServer and Etcd are the binaries; found (and built, through
	// test/testenv/setup.sh) when empty.
	APIServer, Etcd string
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// StartTimeout bounds the start; 2 minutes when zero.
	StartTimeout time.Duration
	// Address is where the API server listens and what it advertises
	// (default 127.0.0.1); a node in a network namespace reaches it there.
	Address string
	// ServiceCIDR is the Service IP range (default 10.0.0.0/24); its first
	// address (Service "kubernetes") is in the serving certificate.
	ServiceCIDR string
}

// ControlPlane is a running etcd + kube-apiserver.
type ControlPlane struct {
	// Config authenticates as a cluster admin (group system:masters).
	Config *rest.Config
	// CAPEM is the CA that signed the API server's serving certificate.
	CAPEM []byte
	// CAPool holds CAPEM.
	CAPool *x509.CertPool
	// IssuerURL is the service-account issuer (https://127.0.0.1:<port>);
	// /.well-known/openid-configuration and /openid/v1/jwks are readable
	// anonymously.
	IssuerURL string
	// Kubeconfig is a kubeconfig file for Config.
	Kubeconfig string
	// Dir holds the logs (etcd.log, kube-apiserver.log).
	Dir string

	ownDir      bool
	address     string
	serviceCIDR string
	etcd        *exec.Cmd
	apiserv     *exec.Cmd
}

const adminToken = "kubetest-admin-token"

// Start starts etcd and kube-apiserver and returns once the API server is
// ready. The caller must Stop it. A missing binary is an error naming the
// script that builds it; nothing is skipped.
func Start(ctx context.Context, o Options) (_ *ControlPlane, err error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if o.APIServer == "" || o.Etcd == "" {
		apiserver, etcd, err := Binaries(ctx)
		if err != nil {
			return nil, err
		}
		if o.APIServer == "" {
			o.APIServer = apiserver
		}
		if o.Etcd == "" {
			o.Etcd = etcd
		}
	}
	cp := &ControlPlane{Dir: o.Dir}
	if cp.Dir == "" {
		base := ""
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm" // etcd fsyncs a lot: keep its data in memory
		}
		if cp.Dir, err = os.MkdirTemp(base, "kubetest-"); err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
		cp.ownDir = true
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = "10.0.0.0/24"
	}
	serviceIP, err := firstIP(o.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	cp.address, cp.serviceCIDR = o.Address, o.ServiceCIDR
	if err := cp.writeCredentials(net.ParseIP(o.Address), serviceIP); err != nil {
		return nil, err
	}
	etcdURL, err := cp.startEtcd(ctx, o.Etcd)
	if err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, o.APIServer, etcdURL, o.ExtraAPIServerArgs); err != nil {
		return nil, err
	}
	if err := cp.allowAnonymousDiscovery(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

// Binaries finds kube-apiserver (in the testenv cache) and etcd, running
// test/testenv/setup.sh when either is missing.
func Binaries(ctx context.Context) (apiserver, etcd string, err error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", "", errors.New("kubetest: cannot locate the repository")
	}
	script := filepath.Join(filepath.Dir(self), "..", "testenv", "setup.sh")
	// The script is idempotent and fast once everything is there; it prints
	// the kube-apiserver path.
	cmd := exec.CommandContext(ctx, "bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("kubetest: %s failed (run `make testenv`): %w\n%s", script, err, stderr.String())
	}
	apiserver = strings.TrimSpace(string(out))
	if st, err := os.Stat(apiserver); err != nil || st.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("kubetest: %s did not produce an executable kube-apiserver (got %q)", script, apiserver)
	}
	if etcd, err = exec.LookPath("etcd"); err != nil {
		etcd = "/usr/bin/etcd"
		if _, err := os.Stat(etcd); err != nil {
			return "", "", fmt.Errorf("kubetest: etcd not found on PATH nor at /usr/bin/etcd (run `make testenv`)")
		}
	}
	return apiserver, etcd, nil
}

// Stop stops kube-apiserver and etcd and removes a directory Start created.
func (cp *ControlPlane) Stop() {
	for _, c := range []*exec.Cmd{cp.apiserv, cp.etcd} {
		stopProcess(c)
	}
	if cp.ownDir {
		_ = os.RemoveAll(cp.Dir)
	}
}

// Clientset returns an admin clientset with the given client-side rate
// limits (0: 200 QPS, burst 400).
func (cp *ControlPlane) Clientset(qps float32, burst int) (*kubernetes.Clientset, error) {
	rc := rest.CopyConfig(cp.Config)
	rc.QPS, rc.Burst = 200, 400
	if qps > 0 {
		rc.QPS, rc.Burst = qps, burst
	}
	return kubernetes.NewForConfig(rc)
}

// stopGrace is how long a process may take to exit after SIGTERM before it
// is killed; a grace period, not a synchronisation.
const stopGrace = 10 * time.Second

func stopProcess(c *exec.Cmd) {
	if c == nil || c.Process == nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = c.Process.Kill()
		<-done
	}
}

func (cp *ControlPlane) path(name string) string { return filepath.Join(cp.Dir, name) }

// CAFile is the CA that signed the API server's certificate, as a file.
func (cp *ControlPlane) CAFile() string { return cp.path("ca.crt") }

// writeCredentials writes a CA, the API server's serving certificate, the
// service-account signing key and the static token file.
func (cp *ControlPlane) writeCredentials(address, serviceIP net.IP) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), address, serviceIP},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, srvKey.Public(), caKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	cp.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	cp.CAPool = x509.NewCertPool()
	cp.CAPool.AddCert(ca)
	files := map[string][]byte{
		"ca.crt":      cp.CAPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"tokens.csv":  []byte(adminToken + ",kubetest-admin,kubetest-admin,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(cp.path(name), b, 0o600); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	return nil
}

// freePort returns a port of address nobody listens on right now.
func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (cp *ControlPlane) command(bin, logName string, args ...string) (*exec.Cmd, error) {
	logf, err := os.Create(cp.path(logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, even when it crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("kubetest: starting %s: %w", bin, err)
	}
	logf.Close() // the child holds its own descriptor
	return cmd, nil
}

// logTail is the end of a log, for error messages.
func (cp *ControlPlane) logTail(name string) string {
	b, _ := os.ReadFile(cp.path(name))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func (cp *ControlPlane) startEtcd(ctx context.Context, bin string) (string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		client, err1 := freePort("127.0.0.1")
		peer, err2 := freePort("127.0.0.1")
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("kubetest: %w", err)
		}
		clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
		dataDir := cp.path(fmt.Sprintf("etcd-%d", attempt))
		cmd, err := cp.command(bin, "etcd.log",
			"--name", "kubetest", "--data-dir", dataDir,
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "kubetest="+peerURL, "--initial-cluster-state", "new",
			"--log-level", "warn", "--logger", "zap", "--quota-backend-bytes", "4294967296")
		if err != nil {
			return "", err
		}
		cp.etcd = cmd
		if err := waitHTTP(ctx, http.DefaultClient, clientURL+"/health", "", cmd); err == nil {
			return clientURL, nil
		} else {
			lastErr = err
		}
		stopProcess(cmd)
		cp.etcd = nil
	}
	return "", fmt.Errorf("kubetest: etcd did not start: %w\n%s", lastErr, cp.logTail("etcd.log"))
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, bin, etcdURL string, extra []string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort(cp.address)
		if err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
		host := net.JoinHostPort(cp.address, strconv.Itoa(port))
		issuer := "https://" + host
		args := []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + cp.address, "--advertise-address=" + cp.address, "--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + cp.path("serving.crt"), "--tls-private-key-file=" + cp.path("serving.key"),
			"--token-auth-file=" + cp.path("tokens.csv"),
			"--authorization-mode=RBAC", "--anonymous-auth=true",
			"--service-account-issuer=" + issuer,
			"--service-account-key-file=" + cp.path("sa.key"),
			"--service-account-signing-key-file=" + cp.path("sa.key"),
			"--api-audiences=" + issuer,
			"--service-cluster-ip-range=" + cp.serviceCIDR,
			"--cert-dir=" + cp.path("certs"),
			"--enable-priority-and-fairness=false",
			"--profiling=false",
			"--v=0",
		}
		args = append(args, extra...)
		cmd, err := cp.command(bin, "kube-apiserver.log", args...)
		if err != nil {
			return err
		}
		cp.apiserv = cmd
		cp.IssuerURL = issuer
		cp.Config = &rest.Config{
			Host: issuer, BearerToken: adminToken,
			TLSClientConfig: rest.TLSClientConfig{CAData: cp.CAPEM},
			QPS:             200, Burst: 400,
		}
		hc, err := rest.HTTPClientFor(cp.Config)
		if err != nil {
			return err
		}
		if err = waitHTTP(ctx, hc, issuer+"/readyz", adminToken, cmd); err == nil {
			return cp.writeKubeconfig()
		}
		lastErr = err
		stopProcess(cmd)
		cp.apiserv = nil
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("kubetest: kube-apiserver did not become ready: %w\n%s", lastErr, cp.logTail("kube-apiserver.log"))
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func waitHTTP(ctx context.Context, hc *http.Client, url, token string, cmd *exec.Cmd) error {
	return Poll(ctx, 200*time.Millisecond, url+" answering 200", func() (bool, error) {
		// ProcessState is only set by Wait, which Stop calls; probe the pid instead.
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return false, fmt.Errorf("process exited: %w", err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			return false, Retry(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return false, Retry(fmt.Errorf("%s: %s", url, res.Status))
		}
		return true, nil
	})
}

// retryable is a condition's error that Poll reports on timeout but does
// not stop for.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retry marks err as transient: Poll keeps polling and, if the wait times
// out, names err as the last thing it saw.
func Retry(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// Poll calls cond at once and then every interval until it returns true.
// It stops early when cond returns an error not made by Retry. When ctx
// ends first, the error names what was awaited, ctx's error and the last
// Retry error cond returned. Tests derive ctx from their own deadline, so
// a slow machine waits longer instead of failing.
func Poll(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var r retryable
		switch {
		case errors.As(err, &r):
			last = r.err
		case err != nil:
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

func (cp *ControlPlane) writeKubeconfig() error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.CAPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	kc.CurrentContext = "kubetest"
	cp.Kubeconfig = cp.path("kubeconfig")
	return clientcmd.WriteToFile(*kc, cp.Kubeconfig)
}

// allowAnonymousDiscovery binds the bootstrap role
// system:service-account-issuer-discovery to unauthenticated callers, as
// EKS does in effect: STS fetches discovery and JWKS without credentials.
func (cp *ControlPlane) allowAnonymousDiscovery(ctx context.Context) error {
	cs, err := cp.Clientset(0, 0)
	if err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubetest:anonymous-issuer-discovery"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "system:unauthenticated"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: allowing anonymous OIDC discovery: %w", err)
	}
	// The binding takes effect once the RBAC cache sees it.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(cp.CAPool)}, Timeout: 5 * time.Second}
	return waitHTTP(ctx, hc, cp.IssuerURL+"/.well-known/openid-configuration", "", cp.apiserv)
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// firstIP is the first host address of cidr (10.0.0.0/24 → 10.0.0.1).
func firstIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("kubetest: service CIDR: %w", err)
	}
	ip := n.IP.To4()
	if ip == nil {
		return nil, fmt.Errorf("kubetest: service CIDR %s is not IPv4", cidr)
	}
	ip = append(net.IP(nil), ip...)
	ip[3]++
	return ip, nil
}
