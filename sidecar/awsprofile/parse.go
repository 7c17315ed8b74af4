package awsprofile

import (
	"fmt"
	"sort"
	"strings"
)

// SourcePrefix marks the profiles that assume the proxy role with the pod's web
// identity; the others chain from them (source_profile) to the asset roles.
const SourcePrefix = "src_"

// Profile is one section of the config file.
type Profile struct {
	Name     string
	Settings map[string]string
}

// Config is a parsed AWS config file, profiles in file order.
type Config struct {
	Profiles []Profile
}

// Source is a profile the sidecar verifies with AssumeRoleWithWebIdentity.
type Source struct {
	Profile              string `json:"profile"`
	RoleARN              string `json:"role_arn"`
	WebIdentityTokenFile string `json:"web_identity_token_file,omitempty"`
}

// SyntaxError is a line the parser does not understand.
type SyntaxError struct {
	Line   int
	Reason string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("AWS config line %d: %s", e.Line, e.Reason) }

// Parse reads the subset of the AWS shared-config format the broker renders and
// the SDKs accept: `[profile NAME]` or `[NAME]` sections, `key = value` or
// `key=value` settings, blank lines and `#`/`;` comment lines. A section that
// appears twice is merged, later settings winning, as the SDKs do.
func Parse(text string) (Config, error) {
	var c Config
	index := map[string]int{}
	cur := -1
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				return Config{}, &SyntaxError{Line: n, Reason: "section header without closing ']'"}
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if f := strings.Fields(name); len(f) > 0 && f[0] == "profile" {
				name = strings.TrimSpace(strings.TrimPrefix(name, "profile"))
			}
			if name == "" || strings.ContainsAny(name, "[] \t") {
				return Config{}, &SyntaxError{Line: n, Reason: fmt.Sprintf("invalid profile name %q", name)}
			}
			j, seen := index[name]
			if !seen {
				j = len(c.Profiles)
				index[name] = j
				c.Profiles = append(c.Profiles, Profile{Name: name, Settings: map[string]string{}})
			}
			cur = j
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, &SyntaxError{Line: n, Reason: "expected [section] or key = value"}
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if key == "" || strings.ContainsAny(key, " \t[]") {
			return Config{}, &SyntaxError{Line: n, Reason: fmt.Sprintf("invalid key %q", key)}
		}
		if cur < 0 {
			return Config{}, &SyntaxError{Line: n, Reason: "setting " + key + " before any [profile] section"}
		}
		c.Profiles[cur].Settings[key] = val
	}
	return c, nil
}

// Names lists the profiles a workload uses (AWS_PROFILE): every profile except
// the src_ ones, in file order. It goes by name only; Validate classifies by
// settings (a role called src_x renders an assumed-role profile src_x).
func (c Config) Names() []string {
	out := []string{}
	for _, p := range c.Profiles {
		if !strings.HasPrefix(p.Name, SourcePrefix) {
			out = append(out, p.Name)
		}
	}
	return out
}

// Sources lists the src_ profiles with their role and token file, in file order.
// A src_ profile without role_arn is an error: it cannot work.
func (c Config) Sources() ([]Source, error) {
	out := []Source{}
	for _, p := range c.Profiles {
		if !strings.HasPrefix(p.Name, SourcePrefix) {
			continue
		}
		arn := p.Settings["role_arn"]
		if arn == "" {
			return nil, fmt.Errorf("profile %s has no role_arn", p.Name)
		}
		out = append(out, Source{Profile: p.Name, RoleARN: arn, WebIdentityTokenFile: p.Settings["web_identity_token_file"]})
	}
	return out, nil
}

// String renders c in the broker's layout (settings sorted by key).
func (c Config) String() string {
	var b strings.Builder
	for _, p := range c.Profiles {
		if p.Name == "default" {
			b.WriteString("[default]\n")
		} else {
			b.WriteString("[profile " + p.Name + "]\n")
		}
		keys := make([]string, 0, len(p.Settings))
		for k := range p.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(k + " = " + p.Settings[k] + "\n")
		}
	}
	return b.String()
}
