package brokerapi

import (
	"strings"
	"testing"
)

// TestBaseURL: DOMINO_IRSA_ENDPOINT names the map URL; clients that call
// other paths need the base URL under it.
func TestBaseURL(t *testing.T) {
	for _, c := range []struct{ endpoint, want string }{
		{"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa", "https://irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa/", "https://irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field:8443/map_iam_roles_to_pod_sa", "https://irsa-svc.domino-field:8443"},
		{"https://gw.example.com/irsa/map_iam_roles_to_pod_sa", "https://gw.example.com/irsa"},
		{"https://irsa-svc.domino-field", "https://irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field/", "https://irsa-svc.domino-field"},
		{" http://127.0.0.1:6000\n", "http://127.0.0.1:6000"},
		{"https://irsa-svc.domino-field/v2/map", "https://irsa-svc.domino-field/v2/map"},
		{"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa_v2", "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa_v2"},
	} {
		if got := BaseURL(c.endpoint); got != c.want {
			t.Errorf("BaseURL(%q) = %q, want %q", c.endpoint, got, c.want)
		}
	}
}

func FuzzBaseURL(f *testing.F) {
	for _, s := range []string{"https://a/map_iam_roles_to_pod_sa", "http://a/", "https://a/x/map_iam_roles_to_pod_sa//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		b := BaseURL(endpoint)
		// A base URL never ends in a slash, and its map URL leads back to it.
		if strings.HasSuffix(b, "/") {
			t.Fatalf("BaseURL(%q) = %q ends in a slash", endpoint, b)
		}
		if got := BaseURL(b + PathMap); got != b {
			t.Fatalf("BaseURL(%q) = %q, but BaseURL of its map URL is %q", endpoint, b, got)
		}
	})
}

func TestServiceOf(t *testing.T) {
	for _, c := range []struct{ endpoint, want string }{
		{"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa", "irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field", "irsa-svc.domino-field"},
		{"https://IRSA-SVC.Domino-Field.svc:443/x", "irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field.svc.cluster.local./", "irsa-svc.domino-field"},
		{"https://irsa-svc.domino-field.svc.corp.example", "irsa-svc.domino-field"},
		{"http://irsa-svc:6000", "irsa-svc.domino-compute"},
		{"https://broker.corp.example.com/map", "broker.corp.example.com"},
		{"https://10.0.0.7:6000", "10.0.0.7"},
		{"https://[fd00::1]/", "fd00::1"},
		{" https://irsa-svc.domino-field\n", "irsa-svc.domino-field"},
	} {
		got, err := ServiceOf(c.endpoint, "domino-compute")
		if err != nil || got != c.want {
			t.Errorf("ServiceOf(%q) = %q, %v; want %q", c.endpoint, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "irsa-svc.domino-field", "ftp://irsa-svc", "https://", "https://:443/", "://x", "https://a b/", "http://0.. ", "https://a..b/", "https://a%2fb/"} {
		if got, err := ServiceOf(bad, "domino-compute"); err == nil {
			t.Errorf("ServiceOf(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzServiceOf(f *testing.F) {
	for _, s := range []string{"https://irsa-svc.domino-field/map", "http://a", "https://a.b.svc.c", "https://[::1]:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, endpoint string) {
		s, err := ServiceOf(endpoint, "ns")
		if err != nil {
			return
		}
		if s == "" {
			t.Fatalf("ServiceOf(%q): empty service without an error", endpoint)
		}
		// A name is its own normal form.
		if again, err := ServiceOf("https://"+s, "other"); err == nil && again != s && !ipv6(s) {
			t.Fatalf("ServiceOf(%q) = %q, but ServiceOf(https://%s) = %q", endpoint, s, s, again)
		}
	})
}

func ipv6(s string) bool {
	for _, r := range s {
		if r == ':' {
			return true
		}
	}
	return false
}
