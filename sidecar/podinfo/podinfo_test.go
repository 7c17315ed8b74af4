package podinfo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// formatMap is the kubelet's writer for downward-API maps (pkg/fieldpath.FormatMap).
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%v=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "one line no newline", in: `a="b"`, want: map[string]string{"a": "b"}},
		{name: "space before key", in: "a=\"b\"\n\n c=\"d\"\n", wantErr: "line 3: invalid key"},
		{name: "blank lines ignored", in: "a=\"b\"\n\n\nc=\"d\"\n", want: map[string]string{"a": "b", "c": "d"}},
		{name: "crlf", in: "a=\"b\"\r\nc=\"d\"\r\n", want: map[string]string{"a": "b", "c": "d"}},
		{name: "empty value", in: `a=""`, want: map[string]string{"a": ""}},
		{name: "escaped quote and backslash", in: `a="x\"y\\z"`, want: map[string]string{"a": `x"y\z`}},
		{name: "equals inside value", in: `a="k=v"`, want: map[string]string{"a": "k=v"}},
		{name: "unicode escape", in: `a="\u2603"`, want: map[string]string{"a": "☃"}},
		{name: "prefixed keys", in: `dominodatalab.com/execution-id="abc"`, want: map[string]string{brokerapi.LabelExecutionID: "abc"}},
		{name: "no equals", in: "a", wantErr: `line 1: expected key="value"`},
		{name: "empty key", in: `="b"`, wantErr: "line 1: invalid key"},
		{name: "unquoted value", in: "a=b", wantErr: "not a quoted string"},
		{name: "unterminated quote", in: `a="b`, wantErr: "not a valid quoted string"},
		{name: "bad escape", in: `a="\q"`, wantErr: "not a valid quoted string"},
		{name: "text after quote", in: `a="b" c`, wantErr: "not a valid quoted string"},
		{name: "duplicate", in: "a=\"b\"\na=\"c\"", wantErr: "line 2: duplicate key a"},
		{name: "error on later line", in: "a=\"b\"\nbroken", wantErr: "line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				var se *SyntaxError
				if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want *SyntaxError containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseKubeletFile(t *testing.T) {
	data, err := os.ReadFile("testdata/labels")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got["notes"] != "a \"quoted\" value\\with\ttab and ünïcode ☃" {
		t.Errorf("notes = %q", got["notes"])
	}
	info, err := FromLabels(got)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{RunID: "64b7f0c2a1e3d9001f2c3b4a", WorkloadType: "cluster-worker"}
	if info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}
}

func TestFromLabels(t *testing.T) {
	tests := []struct {
		name    string
		labels  map[string]string
		want    Info
		wantErr error // sentinel, or nil
		errText string
	}{
		{name: "execution id", labels: map[string]string{brokerapi.LabelExecutionID: "abc123"}, want: Info{RunID: "abc123"}},
		{name: "execution id wins over name", labels: map[string]string{brokerapi.LabelExecutionID: "abc", brokerapi.LabelAppName: "run-xyz"}, want: Info{RunID: "abc"}},
		{name: "fallback to app name", labels: map[string]string{brokerapi.LabelAppName: "run-xyz9"}, want: Info{RunID: "xyz9"}},
		{name: "empty execution id falls back", labels: map[string]string{brokerapi.LabelExecutionID: "", brokerapi.LabelAppName: "run-xyz"}, want: Info{RunID: "xyz"}},
		// A prefix, not a character set: TrimLeft("run-nur", "run-") would give "".
		{name: "prefix not charset", labels: map[string]string{brokerapi.LabelAppName: "run-run-nur"}, want: Info{RunID: "run-nur"}},
		{name: "name without prefix", labels: map[string]string{brokerapi.LabelAppName: "jupyter"}, wantErr: ErrNoRunID},
		{name: "nothing", labels: map[string]string{"other": "x"}, wantErr: ErrNoRunID},
		{name: "only prefix", labels: map[string]string{brokerapi.LabelAppName: "run-"}, errText: "run id must be"},
		{name: "uppercase", labels: map[string]string{brokerapi.LabelExecutionID: "ABC"}, errText: "run id must be"},
		{name: "wildcard", labels: map[string]string{brokerapi.LabelExecutionID: "a*b"}, errText: "run id must be"},
		{name: "leading dash", labels: map[string]string{brokerapi.LabelExecutionID: "-ab"}, errText: "run id must be"},
		{name: "too long", labels: map[string]string{brokerapi.LabelExecutionID: strings.Repeat("a", 60)}, errText: "at most 59"},
		{name: "59 is fine", labels: map[string]string{brokerapi.LabelExecutionID: strings.Repeat("a", 59)}, want: Info{RunID: strings.Repeat("a", 59)}},
		{name: "workload type", labels: map[string]string{brokerapi.LabelExecutionID: "r1", brokerapi.LabelWorkloadType: "cluster-master"}, want: Info{RunID: "r1", WorkloadType: "cluster-master"}},
		{name: "empty workload type", labels: map[string]string{brokerapi.LabelExecutionID: "r1", brokerapi.LabelWorkloadType: ""}, want: Info{RunID: "r1"}},
		{name: "bad workload type", labels: map[string]string{brokerapi.LabelExecutionID: "r1", brokerapi.LabelWorkloadType: "gpu"}, errText: "must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromLabels(tt.labels)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				var ie *InvalidError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want *InvalidError containing %q", err, tt.errText)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Load(ctx, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	p := filepath.Join(dir, "labels")
	if err := os.WriteFile(p, []byte(formatMap(map[string]string{brokerapi.LabelAppName: "run-r7", "x": `we"ird`})), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := Load(ctx, p)
	if err != nil || info.RunID != "r7" {
		t.Fatalf("Load = %+v, %v", info, err)
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	var se *SyntaxError
	if _, err := Load(ctx, p); !errors.As(err, &se) || !strings.Contains(err.Error(), p) {
		t.Errorf("garbage: err = %v, want *SyntaxError naming the file", err)
	}
}

// FuzzParse checks that Parse never panics and that whatever the kubelet writes
// for a map comes back unchanged.
func FuzzParse(f *testing.F) {
	seeds, _ := os.ReadFile("testdata/labels")
	f.Add(string(seeds), "k", "v")
	f.Add(`a="b"`, "dominodatalab.com/execution-id", "abc")
	f.Add("a=\"\\\"\"\n\n=", "x", "\x00\xff\"\\\n")
	f.Add("", "app.kubernetes.io/name", "run-")
	f.Fuzz(func(t *testing.T, raw, key, val string) {
		if labels, err := Parse([]byte(raw)); err == nil {
			_, _ = FromLabels(labels)
		}
		if key == "" || strings.ContainsAny(key, " \t\"=\n\r") {
			return
		}
		m := map[string]string{key: val, "z-other": "q"}
		if key == "z-other" {
			delete(m, "z-other")
		}
		got, err := Parse([]byte(formatMap(m)))
		if err != nil {
			t.Fatalf("kubelet output rejected: %v\n%s", err, formatMap(m))
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %q, want %q", got, m)
		}
	})
}
