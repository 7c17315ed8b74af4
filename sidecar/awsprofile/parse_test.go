package awsprofile

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden parses each testdata/*.ini and compares names, sources and the
// re-rendered text with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.ini")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			src, err := c.Sources()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(map[string]any{"names": c.Names(), "sources": src, "rendered": strings.Split(c.String(), "\n")}, "", "  ")
			golden := strings.TrimSuffix(f, ".ini") + ".golden"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("mismatch with %s:\n got %s\nwant %s", golden, got, want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Profile
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only blank and comments", in: "\n# c\n ; d \n", want: nil},
		{name: "default section", in: "[default]\nregion=us-east-1", want: []Profile{{Name: "default", Settings: map[string]string{"region": "us-east-1"}}}},
		{name: "value with equals", in: "[profile a]\nk = x=y", want: []Profile{{Name: "a", Settings: map[string]string{"k": "x=y"}}}},
		{name: "empty value", in: "[profile a]\nk =", want: []Profile{{Name: "a", Settings: map[string]string{"k": ""}}}},
		{name: "crlf", in: "[profile a]\r\nk = v\r\n", want: []Profile{{Name: "a", Settings: map[string]string{"k": "v"}}}},
		{name: "merge duplicate", in: "[profile a]\nk=1\nj=2\n[profile b]\n[profile a]\nk=3", want: []Profile{
			{Name: "a", Settings: map[string]string{"k": "3", "j": "2"}}, {Name: "b", Settings: map[string]string{}}}},
		{name: "setting before section", in: "k = v\n[profile a]", wantErr: "line 1: setting k before any"},
		{name: "unclosed section", in: "[profile a\nk=v", wantErr: "line 1: section header"},
		{name: "empty section", in: "[]", wantErr: "invalid profile name"},
		{name: "empty profile name", in: "[profile ]", wantErr: "invalid profile name"},
		{name: "space in name", in: "[profile a b]", wantErr: "invalid profile name"},
		{name: "garbage line", in: "[profile a]\nhello", wantErr: "line 2: expected"},
		{name: "empty key", in: "[profile a]\n= v", wantErr: "invalid key"},
		{name: "html error page", in: "<html><body>502 Bad Gateway</body></html>", wantErr: "line 1: expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in)
			if tt.wantErr != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want *SyntaxError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Profiles, tt.want) {
				t.Fatalf("got %+v, want %+v", c.Profiles, tt.want)
			}
		})
	}
}

func TestSources(t *testing.T) {
	c, err := Parse("[profile src_a]\nweb_identity_token_file=/t\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sources(); err == nil || !strings.Contains(err.Error(), "src_a has no role_arn") {
		t.Fatalf("err = %v, want missing role_arn", err)
	}
	c, _ = Parse("[profile a]\nsource_profile=src_a\n[profile src_a]\nrole_arn=arn:x\n")
	src, err := c.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Source{{Profile: "src_a", RoleARN: "arn:x"}}; !reflect.DeepEqual(src, want) {
		t.Fatalf("sources = %+v, want %+v", src, want)
	}
	if got := c.Names(); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("names = %v", got)
	}
}

// FuzzParse: no panics, and a parsed config survives render → parse unchanged.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"two-roles.ini", "comments.ini", "empty.ini"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("[profile a]\nk = v = w\n[profile src_a]\n")
	f.Add("[\n]\n=\n[profile]")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(in)
		if err != nil {
			return
		}
		_, _ = c.Sources()
		_ = c.Names()
		again, err := Parse(c.String())
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, c.String())
		}
		if !reflect.DeepEqual(normalize(again), normalize(c)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

func normalize(c Config) []Profile {
	if len(c.Profiles) == 0 {
		return nil
	}
	return c.Profiles
}
