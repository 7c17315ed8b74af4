package awsconfig

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/irsa-broker/irsa-broker/core/model"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	eks    = "946429944765"
	assets = "524112250363"
)

func role(account, name string) string { return "arn:aws:iam::" + account + ":role/" + name }

func pairOf(name string) model.RolePair {
	return model.RolePair{IAMRoleARN: role(assets, name), ProxyIAMRoleARN: role(eks, name)}
}

// legacyExample is the exact output of the existing service for one role.
const legacyExample = `[profile acme-list-bucket-role]
source_profile = src_acme-list-bucket-role
role_arn=arn:aws:iam::524112250363:role/acme-list-bucket-role
[profile src_acme-list-bucket-role]
web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token
role_arn=arn:aws:iam::946429944765:role/acme-list-bucket-role
`

func TestLegacyExampleByteForByte(t *testing.T) {
	cfg, err := Render([]model.RolePair{pairOf("acme-list-bucket-role")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Text != legacyExample {
		t.Fatalf("got:\n%s\nwant:\n%s", cfg.Text, legacyExample)
	}
	want := []Profile{{Name: "acme-list-bucket-role", AssetRoleARN: role(assets, "acme-list-bucket-role"),
		ProxyRoleARN: role(eks, "acme-list-bucket-role"), SourceProfile: "src_acme-list-bucket-role"}}
	if !reflect.DeepEqual(cfg.Profiles, want) {
		t.Fatalf("profiles = %+v", cfg.Profiles)
	}
}

var goldenCases = []struct {
	name  string
	roles []model.RolePair
	opts  Options
}{
	{"empty", nil, Options{}},
	{"legacy-single", []model.RolePair{pairOf("acme-list-bucket-role")}, Options{}},
	{"three-roles-sorted", []model.RolePair{pairOf("acme-update-bucket-role"), pairOf("acme-list-bucket-role"), pairOf("acme-read-bucket-role")}, Options{}},
	{"duplicates-collapsed", []model.RolePair{pairOf("acme-read-bucket-role"), pairOf("acme-list-bucket-role"), pairOf("acme-read-bucket-role")}, Options{}},
	{"all-options", []model.RolePair{pairOf("acme-list-bucket-role"), pairOf("acme-read-bucket-role")},
		Options{TokenFile: "/var/run/secrets/custom/token", Region: "us-gov-west-1", RoleSessionName: "alice", DurationSeconds: 3600}},
	{"same-name-other-account", []model.RolePair{
		{IAMRoleARN: role("111111111111", "data"), ProxyIAMRoleARN: role(eks, "data-a")},
		{IAMRoleARN: role("000000000000", "data"), ProxyIAMRoleARN: role(eks, "data-b")},
	}, Options{}},
	{"same-name-same-account-paths", []model.RolePair{
		{IAMRoleARN: "arn:aws:iam::" + assets + ":role/team/b/data", ProxyIAMRoleARN: role(eks, "p1")},
		{IAMRoleARN: "arn:aws:iam::" + assets + ":role/team/a/data", ProxyIAMRoleARN: role(eks, "p2")},
		{IAMRoleARN: "arn:aws:iam::" + assets + ":role/data", ProxyIAMRoleARN: role(eks, "p3")},
	}, Options{}},
	{"same-asset-two-proxies", []model.RolePair{
		{IAMRoleARN: role(assets, "data"), ProxyIAMRoleARN: role(eks, "proxy-b")},
		{IAMRoleARN: role(assets, "data"), ProxyIAMRoleARN: role(eks, "proxy-a")},
		{IAMRoleARN: role(assets, "data"), ProxyIAMRoleARN: role(eks, "proxy-c")},
	}, Options{}},
	{"src-prefix-and-suffix-clashes", []model.RolePair{
		pairOf("x"),
		pairOf("src_x"),
		{IAMRoleARN: role("000000000000", "y"), ProxyIAMRoleARN: role(eks, "y")},
		pairOf("y-" + assets),
		pairOf("y"),
	}, Options{}},
	{"odd-characters-and-partitions", []model.RolePair{
		{IAMRoleARN: "arn:aws-cn:iam::" + assets + ":role/we+ird=na,me.x@y_z-1", ProxyIAMRoleARN: "arn:aws-cn:iam::" + eks + ":role/p"},
		{IAMRoleARN: "arn:aws-us-gov:iam::" + eks + ":role/p!a#t;h/we+ird=na,me.x@y_z-1", ProxyIAMRoleARN: "arn:aws-us-gov:iam::" + eks + ":role/q"},
	}, Options{Region: "cn-north-1"}},
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Render(tc.roles, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(cfg.Text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if cfg.Text != string(want) {
				t.Fatalf("output differs from %s:\n%s", path, cfg.Text)
			}
			checkStructure(t, cfg)
			// Rendering is deterministic: reversed input, same output.
			rev := append([]model.RolePair(nil), tc.roles...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if again, _ := Render(rev, tc.opts); again.Text != cfg.Text {
				t.Fatalf("output depends on input order:\n%s", again.Text)
			}
		})
	}
}

// checkStructure asserts the invariants of every rendered file: two section
// headers per profile and nothing else in brackets, every line ending in
// "\n", no blank lines, unique names, profiles sorted.
func checkStructure(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.Text != "" && !strings.HasSuffix(cfg.Text, "\n") {
		t.Fatalf("text does not end with a newline")
	}
	headers := map[string]bool{}
	for _, p := range cfg.Profiles {
		headers["[profile "+p.Name+"]"] = true
		headers["[profile "+p.SourceProfile+"]"] = true
		if p.SourceProfile != "src_"+p.Name {
			t.Fatalf("source profile %q of %q", p.SourceProfile, p.Name)
		}
	}
	if len(headers) != 2*len(cfg.Profiles) {
		t.Fatalf("profile names not unique: %+v", cfg.Profiles)
	}
	lines := strings.Split(strings.TrimSuffix(cfg.Text, "\n"), "\n")
	nHeaders := 0
	for _, l := range lines {
		if cfg.Text == "" {
			break
		}
		if l == "" {
			t.Fatalf("blank line in output")
		}
		if strings.ContainsAny(l, "[]") {
			if !headers[l] {
				t.Fatalf("unexpected bracketed line %q", l)
			}
			nHeaders++
		}
	}
	if nHeaders != 2*len(cfg.Profiles) {
		t.Fatalf("%d section headers for %d profiles", nHeaders, len(cfg.Profiles))
	}
	for i := 1; i < len(cfg.Profiles); i++ {
		if cfg.Profiles[i-1].Name >= cfg.Profiles[i].Name {
			t.Fatalf("profiles not sorted: %q before %q", cfg.Profiles[i-1].Name, cfg.Profiles[i].Name)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	good := []model.RolePair{pairOf("r")}
	tests := []struct {
		name  string
		roles []model.RolePair
		opts  Options
	}{
		{"bad asset ARN", []model.RolePair{{IAMRoleARN: "arn:aws:iam::1:role/x", ProxyIAMRoleARN: role(eks, "p")}}, Options{}},
		{"bad proxy ARN", []model.RolePair{{IAMRoleARN: role(assets, "x"), ProxyIAMRoleARN: "arn:aws:s3:::bucket"}}, Options{}},
		{"role name with bracket", []model.RolePair{{IAMRoleARN: role(assets, "x]"), ProxyIAMRoleARN: role(eks, "p")}}, Options{}},
		{"session name newline", good, Options{RoleSessionName: "alice\n[profile evil]"}},
		{"session name bracket", good, Options{RoleSessionName: "ali[ce]"}},
		{"session name space", good, Options{RoleSessionName: "alice smith"}},
		{"session name too short", good, Options{RoleSessionName: "a"}},
		{"region newline", good, Options{Region: "us-east-1\nrole_arn=x"}},
		{"region upper", good, Options{Region: "US-EAST-1"}},
		{"token file relative", good, Options{TokenFile: "token"}},
		{"token file newline", good, Options{TokenFile: "/t\n[profile x]"}},
		{"token file bracket", good, Options{TokenFile: "/t[1]"}},
		{"token file comment", good, Options{TokenFile: "/t #c"}},
		{"token file trailing space", good, Options{TokenFile: "/t "}},
		{"duration too short", good, Options{DurationSeconds: 899}},
		{"duration too long for chaining", good, Options{DurationSeconds: 3601}},
		{"duration negative", good, Options{DurationSeconds: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Render(tt.roles, tt.opts)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Render = %q, %v; want ErrInvalid", cfg.Text, err)
			}
		})
	}
}

func TestSessionName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                 "alice",
		"alice smith":           "alice-smith",
		"a":                     "",
		"":                      "",
		"ä@x\n":                 "-@x-",
		strings.Repeat("x", 70): strings.Repeat("x", 64),
	} {
		got := SessionName(in)
		if got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
		if got != "" {
			if _, err := Render([]model.RolePair{pairOf("r")}, Options{RoleSessionName: got}); err != nil {
				t.Errorf("SessionName(%q) = %q is rejected: %v", in, got, err)
			}
		}
	}
}

// TestSDKReadsOutput loads every rendered profile with the aws-sdk-go-v2
// shared-config loader, as boto3 and the SDKs in the workload will.
func TestSDKReadsOutput(t *testing.T) {
	for _, tc := range goldenCases {
		if len(tc.roles) == 0 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Render(tc.roles, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "config")
			if err := os.WriteFile(path, []byte(cfg.Text), 0o600); err != nil {
				t.Fatal(err)
			}
			token := tc.opts.TokenFile
			if token == "" {
				token = DefaultTokenFile
			}
			for _, p := range cfg.Profiles {
				sc, err := config.LoadSharedConfigProfile(context.Background(), p.Name, func(o *config.LoadSharedConfigOptions) {
					o.ConfigFiles = []string{path}
					o.CredentialsFiles = []string{filepath.Join(dir, "no-credentials")}
				})
				if err != nil {
					t.Fatalf("profile %s: %v", p.Name, err)
				}
				if sc.RoleARN != p.AssetRoleARN || sc.SourceProfileName != p.SourceProfile {
					t.Fatalf("profile %s: role_arn %q source_profile %q", p.Name, sc.RoleARN, sc.SourceProfileName)
				}
				if sc.Region != tc.opts.Region || sc.RoleSessionName != tc.opts.RoleSessionName {
					t.Fatalf("profile %s: region %q session %q", p.Name, sc.Region, sc.RoleSessionName)
				}
				wantDur := time.Duration(tc.opts.DurationSeconds) * time.Second
				if got := sc.RoleDurationSeconds; (got == nil) != (wantDur == 0) || got != nil && *got != wantDur {
					t.Fatalf("profile %s: duration %v, want %v", p.Name, got, wantDur)
				}
				src := sc.Source
				if src == nil {
					t.Fatalf("profile %s: source profile not resolved", p.Name)
				}
				if src.RoleARN != p.ProxyRoleARN || src.WebIdentityTokenFile != token || src.Region != tc.opts.Region {
					t.Fatalf("source of %s: role_arn %q token %q region %q", p.Name, src.RoleARN, src.WebIdentityTokenFile, src.Region)
				}
			}
		})
	}
}

// FuzzRenderOptions: whatever the options, a successful render has exactly
// two section headers per profile and no other bracketed or stray lines.
func FuzzRenderOptions(f *testing.F) {
	f.Add("us-east-1", "alice", "/var/run/token", 900)
	f.Add("us-east-1\n[profile evil]", "alice", "", 0)
	f.Add("", "bob\r\n[default]", "", 3600)
	f.Add("", "", "/x]\n[y", 0)
	f.Add("eu-west-3", "a@b.c", "/t", -5)
	f.Fuzz(func(t *testing.T, region, session, token string, dur int) {
		roles := []model.RolePair{pairOf("acme-list-bucket-role"), pairOf("acme-read-bucket-role")}
		o := Options{Region: region, RoleSessionName: session, TokenFile: token, DurationSeconds: dur}
		cfg, err := Render(roles, o)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if len(cfg.Profiles) != 2 {
			t.Fatalf("%d profiles", len(cfg.Profiles))
		}
		checkStructure(t, cfg)
		allowed := []string{"[profile ", "source_profile = ", "role_arn=", "region = ", "role_session_name = ", "duration_seconds = ", "web_identity_token_file = "}
		for _, l := range strings.Split(strings.TrimSuffix(cfg.Text, "\n"), "\n") {
			ok := false
			for _, prefix := range allowed {
				ok = ok || strings.HasPrefix(l, prefix)
			}
			if !ok || strings.ContainsAny(l, "\r\x00") {
				t.Fatalf("unexpected line %q", l)
			}
		}
		if got := strings.Count(cfg.Text, "\n"); got != 2*(6+btoi(region != "")*2+btoi(session != "")+btoi(dur != 0)) {
			t.Fatalf("%d lines for options %+v", got, o)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
