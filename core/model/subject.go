package model

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// ServiceAccountPrefix starts every exact service-account subject.
const ServiceAccountPrefix = "system:serviceaccount:"

// TypicalSubjectLength is the length of a typical run's subject,
// system:serviceaccount:domino-compute:run-<24 hex>: 65 characters. Free
// slots of a trust policy are estimated for subjects of this length.
const TypicalSubjectLength = len(ServiceAccountPrefix+"domino-compute:"+brokerapi.RunPrefix) + brokerapi.TypicalRunIDLength

// FreeSlots estimates how many more subjects of subjectLen characters fit
// a trust policy of size characters under quota: each also costs its quotes
// and a comma.
func FreeSlots(quota, size, subjectLen int) int {
	if quota <= 0 || size >= quota {
		return 0
	}
	return (quota - size) / (subjectLen + 3)
}

// legacyPrefix starts the legacy pattern "*:<ns>:<sa>" the existing service
// wrote (StringLike matches it against system:serviceaccount:<ns>:<sa>).
const legacyPrefix = "*:"

var (
	// Kubernetes grammar: namespaces are DNS-1123 labels, service accounts
	// DNS-1123 subdomains. Neither allows IAM wildcards (* and ?).
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	saRE        = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Subject is a service-account subject of a trust policy: the exact
// "system:serviceaccount:<ns>:<sa>" or, with Legacy, the pattern
// "*:<ns>:<sa>" that the previous service wrote. Subjects are rendered
// (String) and parsed (ParseSubject) here only.
type Subject struct {
	Namespace, ServiceAccount string
	Legacy                    bool // written as "*:<ns>:<sa>"
}

// String renders the subject in its own form. It does not validate; build
// subjects of untrusted names with ValidateName first.
func (p Subject) String() string {
	if p.Legacy {
		return legacyPrefix + p.Namespace + ":" + p.ServiceAccount
	}
	return ServiceAccountPrefix + p.Namespace + ":" + p.ServiceAccount
}

// ValidateName checks a namespace and service-account name against the
// Kubernetes grammar, which excludes IAM wildcard characters.
func ValidateName(ns, sa string) error {
	if !namespaceRE.MatchString(ns) {
		return fmt.Errorf("invalid namespace %q: must be a DNS-1123 label", ns)
	}
	if len(sa) > 253 || !saRE.MatchString(sa) {
		return fmt.Errorf("invalid service account name %q: must be a DNS-1123 subdomain", sa)
	}
	return nil
}

// ParseSubject parses an exact or legacy service-account subject with valid
// names. Any other string (another pattern, a foreign subject) is an error.
func ParseSubject(s string) (Subject, error) {
	var p Subject
	rest, ok := strings.CutPrefix(s, ServiceAccountPrefix)
	if !ok {
		if rest, ok = strings.CutPrefix(s, legacyPrefix); !ok {
			return p, fmt.Errorf("invalid subject %q: want %s<namespace>:<service-account>", s, ServiceAccountPrefix)
		}
		p.Legacy = true
	}
	ns, sa, ok := strings.Cut(rest, ":")
	if !ok {
		return p, fmt.Errorf("invalid subject %q: want %s<namespace>:<service-account>", s, ServiceAccountPrefix)
	}
	if err := ValidateName(ns, sa); err != nil {
		return p, fmt.Errorf("invalid subject %q: %w", s, err)
	}
	p.Namespace, p.ServiceAccount = ns, sa
	return p, nil
}

// Exact renders the subject as "system:serviceaccount:<ns>:<sa>".
func (p Subject) Exact() string { p.Legacy = false; return p.String() }

// LegacyForm renders the subject as the legacy pattern "*:<ns>:<sa>".
func (p Subject) LegacyForm() string { p.Legacy = true; return p.String() }
