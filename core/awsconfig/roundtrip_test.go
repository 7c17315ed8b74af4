package awsconfig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// botocoreScript prints, for each config file given, the role_arn of
// profile "x" and of profile "src_x" as botocore reads them.
const botocoreScript = `import sys
from botocore.configloader import load_config
for f in sys.argv[1:]:
    p = load_config(f)["profiles"]
    print(p["x"].get("role_arn"), p["src_x"].get("role_arn"))
`

// python3WithBotocore returns a Python that imports botocore (Debian's
// python3-botocore installs into /usr/bin/python3), or fails the test with
// the command that installs it.
func python3WithBotocore(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import botocore").Run() == nil {
			return py
		}
	}
	t.Fatal("botocore is needed to check rendered configs against the Python SDK: apt-get install -y python3-botocore (make testenv does it)")
	return ""
}

// Issue 11, item 11: a role path may hold any character IAM accepts
// (! through DEL, '/' separating segments). Every ARN the broker accepts
// must reach the workload's SDK unchanged, so the rendered config is read
// back through aws-sdk-go-v2's and botocore's own parsers.
func TestRenderedARNsRoundTripThroughSDKParsers(t *testing.T) {
	py := python3WithBotocore(t)
	dir := t.TempDir()
	type probe struct{ asset, proxy, file string }
	var probes []probe
	add := func(path string) {
		asset := "arn:aws:iam::524112250363:role" + path + "x"
		proxy := "arn:aws:iam::946429944765:role" + path + "p"
		if _, err := model.ParseRoleARN(asset); err != nil {
			t.Errorf("path %q: AWS accepts it, ParseRoleARN refuses: %v", path, err)
			return
		}
		probes = append(probes, probe{asset: asset, proxy: proxy})
	}
	for c := byte(0x21); c < 0x7f; c++ {
		if c != '/' {
			add("/a" + string(c) + "b/")
			add("/" + string(c) + "/")
		}
	}
	for _, p := range []string{`/*[]#;"/`, `/#comment/;x/`, `/%(here)s/`, `/a=b/[profile]/`, `/'q'/"q"/`, `/\/`} {
		add(p)
	}
	// IAM's grammar also allows DEL (\x7f); a control character has no place
	// in a config file or a log line, so the broker refuses it (400).
	if _, err := model.ParseRoleARN("arn:aws:iam::524112250363:role/a\x7fb/x"); err == nil || !strings.Contains(err.Error(), "invalid path") {
		t.Errorf("a path with DEL: %v, want an invalid path error", err)
	}
	files := make([]string, len(probes))
	for i := range probes {
		cfg, err := Render([]model.RolePair{{IAMRoleARN: probes[i].asset, ProxyIAMRoleARN: probes[i].proxy}}, Options{})
		if err != nil {
			t.Fatalf("Render(%q): %v", probes[i].asset, err)
		}
		probes[i].file = filepath.Join(dir, fmt.Sprintf("config-%d", i))
		if err := os.WriteFile(probes[i].file, []byte(cfg.Text), 0o600); err != nil {
			t.Fatal(err)
		}
		files[i] = probes[i].file
	}

	out, err := exec.Command(py, append([]string{"-c", botocoreScript}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(probes) {
		t.Fatalf("botocore read %d configs, want %d:\n%s", len(lines), len(probes), out)
	}
	for i, p := range probes {
		if want := p.asset + " " + p.proxy; lines[i] != want {
			t.Errorf("botocore reads %q, rendered %q", lines[i], want)
		}
		for profile, want := range map[string]string{"x": p.asset, "src_x": p.proxy} {
			sc, err := config.LoadSharedConfigProfile(context.Background(), profile, func(o *config.LoadSharedConfigOptions) {
				o.ConfigFiles, o.CredentialsFiles = []string{p.file}, []string{}
			})
			if err != nil || sc.RoleARN != want {
				t.Errorf("aws-sdk-go-v2 reads profile %s as %q (%v), rendered %q", profile, sc.RoleARN, err, want)
			}
		}
	}
}
