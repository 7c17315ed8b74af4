package brokerapi

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// EnvEndpoint is the workload variable naming the broker's map URL, as
// v1.8's Mutations set it: https://<service>.<field namespace>/map_iam_roles_to_pod_sa.
const EnvEndpoint = "DOMINO_IRSA_ENDPOINT"

// BaseURL is the broker's base URL, to which the API's paths are appended,
// from an endpoint that is either the base URL or, as DOMINO_IRSA_ENDPOINT
// is in workload pods, the whole map URL: a trailing PathMap is removed, and
// trailing slashes. BaseURL(e) + PathMap is the map URL either way.
func BaseURL(endpoint string) string {
	e := strings.TrimRight(strings.TrimSpace(endpoint), "/")
	return strings.TrimRight(strings.TrimSuffix(e, PathMap), "/")
}

// ServiceOf names the broker an endpoint URL reaches, for comparing two
// endpoints: "<service>.<namespace>" for a Kubernetes Service in any of its
// DNS forms (a bare name resolves in namespace, the caller's), the lower-case
// host otherwise. Ports, paths and the cluster domain do not matter.
func ServiceOf(endpoint, namespace string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("endpoint %q: want an http(s) URL", endpoint)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return "", fmt.Errorf("endpoint %q has no host", endpoint)
	}
	if net.ParseIP(host) != nil {
		return host, nil
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", fmt.Errorf("endpoint %q: host %q is not a DNS name", endpoint, host)
		}
	}
	switch {
	case len(labels) == 1:
		return host + "." + namespace, nil
	case len(labels) == 2, labels[2] == "svc":
		return labels[0] + "." + labels[1], nil
	}
	return host, nil
}
