package awsprofile

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The settings the broker's renderer (core/awsconfig.Render) writes, and the
// only ones Validate accepts. An assumed-role profile holds
//
//	source_profile, role_arn                               (required)
//	region, role_session_name, duration_seconds            (optional)
//
// and the web-identity profile it chains from holds
//
//	web_identity_token_file, role_arn                      (required)
//	region                                                 (optional)
const (
	KeySourceProfile        = "source_profile"
	KeyRoleARN              = "role_arn"
	KeyWebIdentityTokenFile = "web_identity_token_file"
	KeyRegion               = "region"
	KeyRoleSessionName      = "role_session_name"
	KeyDurationSeconds      = "duration_seconds"
)

// Duration bounds of an assumed-role profile: the asset role is assumed from
// the proxy role's session, and STS caps chained sessions at one hour (the
// renderer's own bounds; the sidecar links nothing of core).
const (
	MinDurationSeconds = 900
	MaxDurationSeconds = 3600
)

// maxProfileName bounds a profile name: a role name (64) with the renderer's
// account, path and counter suffixes, and "src_".
const maxProfileName = 1024

var (
	assumedRoleKeys = map[string]bool{KeySourceProfile: true, KeyRoleARN: true, KeyRegion: true, KeyRoleSessionName: true, KeyDurationSeconds: true}
	webIdentityKeys = map[string]bool{KeyWebIdentityTokenFile: true, KeyRoleARN: true, KeyRegion: true}

	profileNameRE = regexp.MustCompile(`^[\w+=,.@-]+$`)
	regionRE      = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	durationRE    = regexp.MustCompile(`^[1-9][0-9]{0,4}$`)
	// IAM role ARN, as core/model.ParseRoleARN: the partitions the broker
	// knows, 12-digit account, optional path of printable ASCII, role name.
	roleARNRE = regexp.MustCompile(`^arn:(?:aws|aws-us-gov|aws-cn):iam::[0-9]{12}:role(?P<path>/(?:[\x21-\x2E\x30-\x7E]+/)*)[\w+=,.@-]{1,64}$`)
)

// maxRolePath is IAM's bound on a role path, "/" included.
const maxRolePath = 512

// IsRoleARN reports whether s is an IAM role ARN that core/model.ParseRoleARN
// accepts. The sidecar links nothing of core, so this is a second
// implementation of the same grammar; internal/archtest holds the two to
// agreement on a corpus of valid and hostile ARNs.
func IsRoleARN(s string) bool {
	m := roleARNRE.FindStringSubmatch(s)
	return m != nil && len(m[roleARNRE.SubexpIndex("path")]) <= maxRolePath
}

// Rules are what Validate checks beyond the renderer's grammar.
type Rules struct {
	// TokenFiles are the accepted web_identity_token_file values: where the
	// workload reads the pod's projected token. Empty accepts none.
	TokenFiles []string
}

// Checked is an answer Validate accepted.
type Checked struct {
	Config Config
	// Profiles are the assumed-role profiles, the ones a workload names
	// (AWS_PROFILE), in file order.
	Profiles []string
	// Sources are the web-identity profiles they chain from, in file order.
	Sources []Source
}

// RejectError is an answer that parses as an AWS config file but holds
// something the broker's renderer never writes. It quotes no value of a
// setting that is not allowed.
type RejectError struct {
	Line    int    // 0 when the problem is not one line's
	Profile string // when known
	Reason  string
}

func (e *RejectError) Error() string {
	var b strings.Builder
	b.WriteString("refused AWS config")
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Profile != "" {
		b.WriteString(": profile " + quoteShort(e.Profile))
	}
	return b.String() + ": " + e.Reason
}

// Validate parses text strictly as the broker's renderer writes it and checks
// every setting, before anything is written where the workload's SDK reads it.
// The whole answer is refused (*RejectError) when any of these holds:
//
//   - a section other than [profile NAME] (so no [default], [sso-session …],
//     [services …]), a profile name outside [\w+=,.@-], a profile twice;
//   - a setting outside a profile, a key other than the six above (so no
//     credential_process, credential_source, sso_*, endpoint_url, keys, …), a
//     key twice in a profile, a key not written in that kind of profile;
//   - an indented line (the SDKs read it as part of the previous setting),
//     trailing whitespace, a control character;
//   - role_arn not an IAM role ARN; source_profile not naming a web-identity
//     profile of the same answer (or a cycle); web_identity_token_file not one
//     of r.TokenFiles; region, role_session_name or duration_seconds
//     (MinDurationSeconds..MaxDurationSeconds) not of their grammar;
//   - text without any profile.
//
// Empty text is the broker's answer for a user without grants: no profiles,
// no error. Lines that are no AWS config at all (an HTML page) are a
// *SyntaxError, as for Parse.
func Validate(text string, r Rules) (Checked, error) {
	if text == "" {
		return Checked{}, nil
	}
	type section struct {
		line     int
		settings map[string]string
		lines    map[string]int
	}
	var (
		c       Config
		byName  = map[string]*section{}
		cur     *section
		curName string
	)
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		reject := func(format string, a ...any) error {
			return &RejectError{Line: n, Profile: curName, Reason: fmt.Sprintf(format, a...)}
		}
		switch {
		case raw == "":
			continue
		case !utf8.ValidString(raw):
			return Checked{}, reject("not UTF-8")
		case hasControl(raw):
			return Checked{}, reject("control character")
		case raw[0] == '#' || raw[0] == ';':
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			return Checked{}, reject("indented line (the AWS SDKs read it as part of the previous setting)")
		case strings.TrimRight(raw, " \t") != raw:
			return Checked{}, reject("trailing whitespace")
		case raw[0] == '[':
			if raw[len(raw)-1] != ']' {
				return Checked{}, &SyntaxError{Line: n, Reason: "section header without closing ']'"}
			}
			name, ok := strings.CutPrefix(raw[1:len(raw)-1], "profile ")
			curName = ""
			if !ok {
				return Checked{}, reject("section %s: only [profile NAME] sections are accepted", quoteShort(raw))
			}
			if len(name) > maxProfileName || !profileNameRE.MatchString(name) {
				return Checked{}, reject("profile name %s: want letters, digits and +=,.@_-", quoteShort(name))
			}
			if byName[name] != nil {
				return Checked{}, reject("profile %s appears twice", name)
			}
			cur, curName = &section{line: n, settings: map[string]string{}, lines: map[string]int{}}, name
			byName[name] = cur
			c.Profiles = append(c.Profiles, Profile{Name: name, Settings: cur.settings})
			continue
		}
		// The renderer's two forms: "key = value" and "key=value".
		key, val, ok := strings.Cut(raw, " = ")
		if !ok {
			if key, val, ok = strings.Cut(raw, "="); !ok {
				return Checked{}, &SyntaxError{Line: n, Reason: "expected [profile NAME] or key = value"}
			}
		}
		if !assumedRoleKeys[key] && !webIdentityKeys[key] {
			return Checked{}, reject("setting %s is not one the broker writes", quoteShort(key))
		}
		if cur == nil {
			return Checked{}, reject("setting %s outside a [profile]", key)
		}
		if _, dup := cur.settings[key]; dup {
			return Checked{}, reject("%s set twice", key)
		}
		if err := checkValue(key, val, r); err != "" {
			return Checked{}, reject("%s", err)
		}
		cur.settings[key], cur.lines[key] = val, n
	}
	if len(c.Profiles) == 0 {
		return Checked{}, &RejectError{Reason: "no [profile] in a non-empty answer"}
	}

	var out Checked
	out.Config = c
	webIdentity := func(name string) bool {
		_, ok := byName[name].settings[KeyWebIdentityTokenFile]
		return ok
	}
	for _, p := range c.Profiles {
		s := byName[p.Name]
		reject := func(line int, format string, a ...any) error {
			return &RejectError{Line: line, Profile: p.Name, Reason: fmt.Sprintf(format, a...)}
		}
		_, hasSource := s.settings[KeySourceProfile]
		allowed, kind := assumedRoleKeys, "an assumed-role profile"
		switch {
		case hasSource && webIdentity(p.Name):
			return Checked{}, reject(s.lines[KeySourceProfile], "both source_profile and web_identity_token_file")
		case webIdentity(p.Name):
			allowed, kind = webIdentityKeys, "a web-identity profile"
		case !hasSource:
			return Checked{}, reject(s.line, "neither source_profile nor web_identity_token_file (the SDK would look for credentials elsewhere)")
		}
		keys := make([]string, 0, len(s.settings))
		for k := range s.settings {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return s.lines[keys[i]] < s.lines[keys[j]] })
		for _, k := range keys {
			if !allowed[k] {
				return Checked{}, reject(s.lines[k], "%s is not written in %s", k, kind)
			}
		}
		if _, ok := s.settings[KeyRoleARN]; !ok {
			return Checked{}, reject(s.line, "no role_arn")
		}
		if !hasSource {
			out.Sources = append(out.Sources, Source{Profile: p.Name, RoleARN: s.settings[KeyRoleARN], WebIdentityTokenFile: s.settings[KeyWebIdentityTokenFile]})
			continue
		}
		// Follow the chain: it must reach a web-identity profile of this
		// answer in one step.
		chain := []string{p.Name}
		for name := p.Name; !webIdentity(name); {
			next := byName[name].settings[KeySourceProfile]
			if byName[next] == nil {
				return Checked{}, reject(byName[name].lines[KeySourceProfile], "source_profile %s names no profile of the answer", next)
			}
			for _, seen := range chain {
				if seen == next {
					return Checked{}, reject(s.lines[KeySourceProfile], "source_profile cycle %s", strings.Join(append(chain, next), " → "))
				}
			}
			chain, name = append(chain, next), next
		}
		if len(chain) > 2 {
			return Checked{}, reject(s.lines[KeySourceProfile], "source_profile %s is itself an assumed-role profile; the broker chains once, from a web-identity profile", chain[1])
		}
		out.Profiles = append(out.Profiles, p.Name)
	}
	return out, nil
}

// checkValue returns why val is not a valid value of key, or "".
func checkValue(key, val string, r Rules) string {
	switch key {
	case KeyRoleARN:
		if len(val) > 2048 || !IsRoleARN(val) {
			return fmt.Sprintf("role_arn %s: want an IAM role ARN arn:<partition>:iam::<12 digits>:role/<name>", quoteShort(val))
		}
	case KeySourceProfile:
		if len(val) > maxProfileName || !profileNameRE.MatchString(val) {
			return fmt.Sprintf("source_profile %s: want a profile name", quoteShort(val))
		}
	case KeyWebIdentityTokenFile:
		for _, f := range r.TokenFiles {
			if val == f {
				return ""
			}
		}
		return fmt.Sprintf("web_identity_token_file %s: want the pod's projected token %s", quoteShort(val), strings.Join(r.TokenFiles, " or "))
	case KeyRegion:
		if !regionRE.MatchString(val) {
			return fmt.Sprintf("region %s: want a region name such as us-east-1", quoteShort(val))
		}
	case KeyRoleSessionName:
		if !sessionNameRE.MatchString(val) {
			return fmt.Sprintf("role_session_name %s: want 2 to 64 letters, digits or +=,.@_-", quoteShort(val))
		}
	case KeyDurationSeconds:
		n, err := strconv.Atoi(val)
		if !durationRE.MatchString(val) || err != nil || n < MinDurationSeconds || n > MaxDurationSeconds {
			return fmt.Sprintf("duration_seconds %s: want %d to %d (role chaining limit)", quoteShort(val), MinDurationSeconds, MaxDurationSeconds)
		}
	}
	return ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// quoteShort quotes s for an error, cut to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
