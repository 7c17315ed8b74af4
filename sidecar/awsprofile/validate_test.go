package awsprofile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const (
	eksToken    = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
	customToken = "/var/run/secrets/custom/token" // core/awsconfig/testdata/all-options.golden
)

var rules = Rules{TokenFiles: []string{eksToken, customToken}}

// rendered are configs the broker's renderer writes: its golden files, and
// this package's fixtures of the same layout.
func rendered(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, err := filepath.Glob("../../core/awsconfig/testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no renderer goldens: %v", err)
	}
	files = append(files, "testdata/two-roles.ini", "testdata/empty.ini")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	return out
}

// confirm writes text to a file and checks it with the AWS SDK's loader.
func confirm(t testing.TB, text string, c Checked) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return ConfirmWithSDK(context.Background(), path, c)
}

// TestValidateAcceptsRendered: everything the renderer writes is accepted, the
// AWS SDK reads it the same way, and the profiles are classified by their
// settings, not their names (a role called src_x is an assumed-role profile).
func TestValidateAcceptsRendered(t *testing.T) {
	for name, text := range rendered(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			c, err := Validate(text, rules)
			if err != nil {
				t.Fatal(err)
			}
			if err := confirm(t, text, c); err != nil {
				t.Fatalf("AWS SDK: %v", err)
			}
			parsed, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(parsed), normalize(c.Config)) {
				t.Errorf("Validate and Parse disagree:\n%+v\n%+v", c.Config, parsed)
			}
			if len(c.Profiles) != len(c.Sources) || 2*len(c.Profiles) != len(c.Config.Profiles) {
				t.Errorf("profiles %v, sources %+v", c.Profiles, c.Sources)
			}
		})
	}
	b, err := os.ReadFile("../../core/awsconfig/testdata/src-prefix-and-suffix-clashes.golden")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Validate(string(b), rules)
	if err != nil {
		t.Fatal(err)
	}
	if c.Profiles[0] != "src_x" || c.Sources[0].Profile != "src_src_x" {
		t.Errorf("profiles %v, sources %+v", c.Profiles, c.Sources)
	}
	for _, s := range c.Sources {
		if s.Profile == "src_x" {
			t.Error("the assumed-role profile src_x is listed as a web-identity source")
		}
	}
}

const okPair = "[profile a]\nsource_profile = src_a\nrole_arn=arn:aws:iam::111111111111:role/a\n" +
	"[profile src_a]\nweb_identity_token_file = " + eksToken + "\nrole_arn=arn:aws:iam::222222222222:role/a\n"

func TestValidateRejects(t *testing.T) {
	withA := func(extra string) string { // extra settings in the assumed-role profile
		return strings.Replace(okPair, "role_arn=arn:aws:iam::111111111111:role/a\n", "role_arn=arn:aws:iam::111111111111:role/a\n"+extra, 1)
	}
	withSrc := func(extra string) string { return okPair + extra }
	tests := []struct {
		name   string
		in     string
		want   string
		syntax bool
	}{
		{"credential_process in default", "[default]\ncredential_process = sh -c 'id'\n" + okPair, `line 1: section "[default]": only [profile NAME]`, false},
		{"credential_process", withA("credential_process = sh -c 'id'\n"), `setting "credential_process" is not one the broker writes`, false},
		{"credential_process uppercase", withA("Credential_Process = sh\n"), `"Credential_Process" is not one`, false},
		{"credential_source", withA("credential_source = Environment\n"), `"credential_source"`, false},
		{"sso", withA("sso_session = s\n"), `"sso_session"`, false},
		{"sso-session section", okPair + "[sso-session s]\nsso_start_url = https://x\n", "only [profile NAME]", false},
		{"services section", okPair + "[services s]\nsts =\n", "only [profile NAME]", false},
		{"endpoint_url", withA("endpoint_url = https://evil.example\n"), `"endpoint_url"`, false},
		{"static keys", withA("aws_secret_access_key = s3cr3t\n"), `"aws_secret_access_key"`, false},
		{"sts_regional_endpoints", withA("sts_regional_endpoints = legacy\n"), `"sts_regional_endpoints"`, false},
		{"colon separator", withA("credential_process: sh\n"), "line 4: expected", true},
		{"key with colon", withA("x:role_arn = y\n"), `"x:role_arn"`, false},
		{"tab", withA("region\t= us-east-1\n"), "control character", false},
		{"duplicate key", withA("source_profile = src_a\n"), "source_profile set twice", false},
		{"duplicate profile", okPair + "[profile a]\nregion = us-east-1\n", "profile a appears twice", false},
		{"default header", "[default]\nregion = us-east-1\n" + okPair, "only [profile NAME]", false},
		{"bare header", "[a]\n" + okPair, "only [profile NAME]", false},
		{"two spaces", "[profile  a]\n", "profile name", false},
		{"comment in header", "[profile a;x]\n", "profile name", false},
		{"header with trailing comment", "[profile a] # c\n", "without closing", true},
		{"spaces around equals", withA("region  =  us-east-1\n"), `"region "`, false},
		{"space before equals only", withA("region =us-east-1\n"), `"region "`, false},
		{"space after equals only", withA("region= us-east-1\n"), "region name", false},
		{"indented setting", withA("  credential_process = sh\n"), "indented line", false},
		{"continuation", withA(" more\n"), "indented line", false},
		{"trailing space", strings.Replace(okPair, "role/a\n", "role/a \n", 1), "trailing whitespace", false},
		{"carriage return", strings.ReplaceAll(okPair, "\n", "\r\n"), "control character", false},
		{"nul", okPair + "\x00", "control character", false},
		{"not utf-8", okPair + "#\xff\n", "not UTF-8", false},
		{"setting before profile", "region = us-east-1\n" + okPair, "outside a [profile]", false},
		{"cycle", "[profile a]\nsource_profile = b\nrole_arn=arn:aws:iam::111111111111:role/a\n[profile b]\nsource_profile = a\nrole_arn=arn:aws:iam::111111111111:role/b\n", "source_profile cycle a → b → a", false},
		{"self reference", "[profile a]\nsource_profile = a\nrole_arn=arn:aws:iam::111111111111:role/a\n", "cycle a → a", false},
		{"chain of two", okPair + "[profile b]\nsource_profile = a\nrole_arn=arn:aws:iam::111111111111:role/b\n", "source_profile a is itself an assumed-role profile", false},
		{"missing source", "[profile a]\nsource_profile = src_a\nrole_arn=arn:aws:iam::111111111111:role/a\n", "source_profile src_a names no profile", false},
		{"both kinds", okPair + "[profile b]\nsource_profile = src_a\nweb_identity_token_file = " + eksToken + "\nrole_arn=arn:aws:iam::111111111111:role/b\n", "both source_profile and web_identity_token_file", false},
		{"neither kind", okPair + "[profile b]\nregion = us-east-1\n", "neither source_profile nor web_identity_token_file", false},
		{"no role_arn", "[profile a]\nsource_profile = src_a\n[profile src_a]\nweb_identity_token_file = " + eksToken + "\nrole_arn=arn:aws:iam::222222222222:role/a\n", "profile \"a\": no role_arn", false},
		{"session name in web identity", withSrc("[profile src_b]\nweb_identity_token_file = " + eksToken + "\nrole_arn=arn:aws:iam::222222222222:role/b\nrole_session_name = x1\n"), "role_session_name is not written in a web-identity profile", false},
		{"duration in web identity", strings.Replace(okPair, "role_arn=arn:aws:iam::222222222222:role/a\n", "role_arn=arn:aws:iam::222222222222:role/a\nduration_seconds = 900\n", 1), "duration_seconds is not written in a web-identity profile", false},
		{"foreign token file", strings.Replace(okPair, eksToken, "/etc/shadow", 1), `web_identity_token_file "/etc/shadow"`, false},
		{"user ARN", strings.Replace(okPair, "role/a\n[", "user/a\n[", 1), "want an IAM role ARN", false},
		{"sts ARN", strings.Replace(okPair, "arn:aws:iam::111111111111:role/a", "arn:aws:sts::111111111111:assumed-role/a/x", 1), "want an IAM role ARN", false},
		{"short account", strings.Replace(okPair, "111111111111", "1111", 1), "want an IAM role ARN", false},
		{"unknown partition", strings.Replace(okPair, "arn:aws:iam::111111111111", "arn:evil:iam::111111111111", 1), "want an IAM role ARN", false},
		{"quoted ARN", strings.Replace(okPair, "role_arn=arn:aws:iam::111111111111:role/a", `role_arn="arn:aws:iam::111111111111:role/a"`, 1), "want an IAM role ARN", false},
		{"duration too long", withA("duration_seconds = 43200\n"), "want 900 to 3600", false},
		{"duration too short", withA("duration_seconds = 60\n"), "want 900 to 3600", false},
		{"duration leading zero", withA("duration_seconds = 0900\n"), "want 900 to 3600", false},
		{"duration not a number", withA("duration_seconds = 1h\n"), "want 900 to 3600", false},
		{"region", withA("region = US-EAST-1\n"), "region name", false},
		{"session name", withA("role_session_name = a b\n"), "role_session_name", false},
		{"session name too long", withA("role_session_name = " + strings.Repeat("x", 65) + "\n"), "role_session_name", false},
		{"empty value", withA("region = \n"), "trailing whitespace", false},
		{"empty value without space", withA("region=\n"), "region name", false},
		{"only comments", "# nothing\n", "no [profile]", false},
		{"only newline", "\n", "no [profile]", false},
		{"html", "<html><body>502 Bad Gateway</body></html>", "line 1: expected", true},
		{"unclosed header", "[profile a\n", "without closing", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Validate(tt.in, rules)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var re *RejectError
			var se *SyntaxError
			if tt.syntax && !errors.As(err, &se) || !tt.syntax && !errors.As(err, &re) {
				t.Errorf("err = %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "sh -c") {
				t.Errorf("a refused setting's value is quoted: %v", err)
			}
		})
	}
}

func TestValidateEmptyAndNoTokenFiles(t *testing.T) {
	if c, err := Validate("", Rules{}); err != nil || len(c.Config.Profiles) != 0 || len(c.Profiles) != 0 {
		t.Errorf("empty answer: %+v, %v", c, err)
	}
	if _, err := Validate(okPair, Rules{}); err == nil || !strings.Contains(err.Error(), "web_identity_token_file") {
		t.Errorf("no token files configured: err = %v", err)
	}
}

// TestConfirmWithSDKCatchesDisagreement: a file the SDK reads differently from
// what was validated is refused.
func TestConfirmWithSDKCatchesDisagreement(t *testing.T) {
	c, err := Validate(okPair, rules)
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"extra default":      "[default]\ncredential_process = sh -c id\n" + okPair,
		"extra setting":      strings.Replace(okPair, "[profile src_a]\n", "credential_process = sh -c id\n[profile src_a]\n", 1),
		"other role":         strings.Replace(okPair, "role/a\n[", "role/b\n[", 1),
		"profile missing":    okPair[:strings.Index(okPair, "[profile src_a]")],
		"sub-property value": strings.Replace(okPair, "role_arn=arn:aws:iam::111111111111:role/a\n", "role_arn=arn:aws:iam::111111111111:role/a\n  region = us-east-1\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			var re *RejectError
			if err := confirm(t, file, c); !errors.As(err, &re) {
				t.Errorf("err = %v, want *RejectError", err)
			}
		})
	}
	if err := confirm(t, okPair, c); err != nil {
		t.Errorf("same file: %v", err)
	}
}

// Independent statement of what may be accepted, for the fuzz target.
var (
	fuzzLineRE = regexp.MustCompile(`^(|[#;].*|\[profile [A-Za-z0-9_+=,.@-]+\]|(role_arn|source_profile|web_identity_token_file|region|role_session_name|duration_seconds) ?= ?\S+)$`)
	fuzzShapes = map[string]*regexp.Regexp{
		KeyRoleARN:              regexp.MustCompile(`^arn:aws(-us-gov|-cn)?:iam::\d{12}:role/([!-.0-~]+/)*[A-Za-z0-9_+=,.@-]{1,64}$`),
		KeySourceProfile:        regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]+$`),
		KeyWebIdentityTokenFile: regexp.MustCompile(`^(` + regexp.QuoteMeta(eksToken) + `|` + regexp.QuoteMeta(customToken) + `)$`),
		KeyRegion:               regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`),
		KeyRoleSessionName:      regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{2,64}$`),
		KeyDurationSeconds:      regexp.MustCompile(`^(9\d\d|[1-2]\d{3}|3[0-5]\d\d|3600)$`),
	}
)

// FuzzValidate: whatever Validate accepts holds only the renderer's lines,
// keys and value shapes, every assumed-role profile chains once to a
// web-identity profile of the same answer, and the AWS SDK's own loader sees
// exactly the validated profiles (no default, no credential_process, …).
func FuzzValidate(f *testing.F) {
	for _, text := range rendered(f) {
		f.Add(text)
	}
	f.Add(okPair)
	f.Add("[default]\ncredential_process = sh -c 'id'\n" + okPair)
	f.Add(okPair + "[profile b]\nsource_profile = a\nrole_arn=arn:aws:iam::111111111111:role/b\n")
	f.Add(strings.Replace(okPair, "role_arn=arn:aws:iam::111111111111:role/a\n", "role_arn=arn:aws:iam::111111111111:role/a\n  credential_process = sh\n", 1))
	f.Add("[profile a]\nsource_profile = a\nrole_arn=arn:aws:iam::111111111111:role/a\n")
	f.Add("[profile default]\nsource_profile = src_default\nrole_arn=arn:aws:iam::111111111111:role/default\nduration_seconds = 3600\n" +
		"[profile src_default]\nweb_identity_token_file = " + eksToken + "\nrole_arn=arn:aws:iam::222222222222:role/p#x;y/default\nregion = eu-west-1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Validate(in, rules)
		if err != nil {
			var re *RejectError
			var se *SyntaxError
			if !errors.As(err, &re) && !errors.As(err, &se) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if in == "" {
			return
		}
		for i, line := range strings.Split(in, "\n") {
			if !fuzzLineRE.MatchString(line) {
				t.Fatalf("accepted line %d %q", i+1, line)
			}
		}
		byName := map[string]map[string]string{}
		for _, p := range c.Config.Profiles {
			byName[p.Name] = p.Settings
		}
		for _, p := range c.Config.Profiles {
			for k, v := range p.Settings {
				re, ok := fuzzShapes[k]
				if !ok || !re.MatchString(v) {
					t.Fatalf("profile %s: accepted %s = %q", p.Name, k, v)
				}
			}
			_, wi := p.Settings[KeyWebIdentityTokenFile]
			src, chained := p.Settings[KeySourceProfile]
			switch {
			case wi == chained:
				t.Fatalf("profile %s is not exactly one kind: %v", p.Name, p.Settings)
			case chained:
				if s, ok := byName[src]; !ok || s[KeyWebIdentityTokenFile] == "" {
					t.Fatalf("profile %s chains from %q, not a web-identity profile of the answer", p.Name, src)
				}
				for k := range p.Settings {
					if k == KeyWebIdentityTokenFile {
						t.Fatalf("profile %s: %s", p.Name, k)
					}
				}
			case wi:
				for k := range p.Settings {
					if k == KeyRoleSessionName || k == KeyDurationSeconds {
						t.Fatalf("web-identity profile %s: %s", p.Name, k)
					}
				}
			}
			if p.Settings[KeyRoleARN] == "" {
				t.Fatalf("profile %s without role_arn", p.Name)
			}
		}
		if err := confirm(t, in, c); err != nil {
			t.Fatalf("accepted, but the AWS SDK disagrees: %v\n%s", err, in)
		}
	})
}
