package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// Labels on the objects the broker creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "irsa-broker"
)

// ServiceAccounts creates and deletes service accounts in the compute
// namespace. It labels what it creates as managed and never deletes a
// service account without that label.
type ServiceAccounts struct {
	cs  kubernetes.Interface
	ns  string
	log hclog.Logger
}

// NewServiceAccounts manages service accounts in namespace ns.
func NewServiceAccounts(cs kubernetes.Interface, ns string, log hclog.Logger) *ServiceAccounts {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &ServiceAccounts{cs: cs, ns: ns, log: log.Named("serviceaccounts")}
}

func managed(sa *corev1.ServiceAccount) bool { return sa.Labels[LabelManagedBy] == ManagedBy }

func unavailable(op string, err error) error {
	return model.Wrap(model.KindUnavailable, "kubernetes_unavailable", "cannot "+op+" the service account", err)
}

// Create creates the managed service account name; it is idempotent for a
// managed one and a conflict for an unmanaged one.
func (s *ServiceAccounts) Create(ctx context.Context, name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: map[string]string{LabelManagedBy: ManagedBy}}}
	_, err := s.cs.CoreV1().ServiceAccounts(s.ns).Create(ctx, sa, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := s.cs.CoreV1().ServiceAccounts(s.ns).Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return unavailable("read", gerr)
		}
		if !managed(cur) {
			return model.Errorf(model.KindConflict, "service_account_unmanaged", "service account %s already exists in namespace %s and is not managed by irsa-broker", name, s.ns)
		}
		return nil
	}
	if err != nil {
		return unavailable("create", err)
	}
	s.log.Info("service account created", "namespace", s.ns, "name", name)
	return nil
}

// Delete deletes the managed service account name. An unknown name is
// KindNotFound; an unmanaged one is KindConflict and stays.
func (s *ServiceAccounts) Delete(ctx context.Context, name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	cur, err := s.cs.CoreV1().ServiceAccounts(s.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return model.Errorf(model.KindNotFound, "service_account_not_found", "no service account %s in namespace %s", name, s.ns)
	}
	if err != nil {
		return unavailable("read", err)
	}
	if !managed(cur) {
		return model.Errorf(model.KindConflict, "service_account_unmanaged", "service account %s in namespace %s is not managed by irsa-broker; it is left alone", name, s.ns)
	}
	// Preconditions: delete exactly the object just checked, not a
	// same-named replacement created since.
	uid, rv := cur.UID, cur.ResourceVersion
	err = s.cs.CoreV1().ServiceAccounts(s.ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case apierrors.IsNotFound(err):
		return nil // deleted meanwhile: the outcome asked for
	case apierrors.IsConflict(err):
		return model.Errorf(model.KindConflict, "service_account_changed", "service account %s changed while being deleted; try again", name)
	case err != nil:
		return unavailable("delete", err)
	}
	s.log.Info("service account deleted", "namespace", s.ns, "name", name)
	return nil
}

// UserServiceAccountPrefix starts every per-user service-account name.
const UserServiceAccountPrefix = "user-"

var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// UserServiceAccountName is the per-user service account of username
// (docs/design/replicas.md, "Per-user service accounts"):
//
//   - a username that already is a lowercase DNS label (letters, digits,
//     '-') of at most 50 characters maps to "user-<username>";
//   - any other username is lowercased, every run of characters outside
//     [a-z0-9] becomes one '-', leading/trailing '-' are cut, the result is
//     cut to 40 characters, and ".<first 12 hex digits of SHA-256(username)>"
//     is appended: "Jane.Doe@example.com" → "user-jane-doe-example-com.<hash>".
//
// The '.' only ever appears in the second form and the hash tells apart
// usernames that sanitise alike, so two usernames never share a name (up
// to a 48-bit hash collision). The result never holds IAM wildcards.
func UserServiceAccountName(username string) (string, error) {
	if username == "" {
		return "", errors.New("the caller has no username to derive a service account from")
	}
	if len(username) <= 50 && labelRE.MatchString(username) {
		return UserServiceAccountPrefix + username, nil
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(username) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	sum := sha256.Sum256([]byte(username))
	h := hex.EncodeToString(sum[:])[:12]
	if s == "" {
		return UserServiceAccountPrefix + "x." + h, nil
	}
	return UserServiceAccountPrefix + s + "." + h, nil
}

// validateName refuses what Kubernetes would refuse, before any API call.
func validateName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return model.Invalid("invalid_service_account_name", "invalid service account name %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}
