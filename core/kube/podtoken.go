package kube

import (
	"context"
	"slices"
	"strings"

	"github.com/irsa-broker/irsa-broker/core/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// User extra keys the API server sets for pod-bound service-account tokens.
const (
	ExtraPodName = "authentication.kubernetes.io/pod-name"
	ExtraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// PodIdentity is who a pod token says it is.
type PodIdentity struct {
	Namespace, ServiceAccount string
	PodName                   string
	PodUID                    types.UID
}

// PodTokenReviewer verifies a pod's projected service-account token.
type PodTokenReviewer interface {
	// Review returns the identity of a valid, pod-bound token; an invalid
	// token is a model.KindForbidden error, an API failure model.KindUnavailable.
	Review(ctx context.Context, token string) (PodIdentity, error)
}

// TokenReviewer verifies pod tokens with the TokenReview API.
type TokenReviewer struct {
	cs       kubernetes.Interface
	audience string
}

var _ PodTokenReviewer = (*TokenReviewer)(nil)

// NewTokenReviewer reviews tokens for audience (empty: the API server's own
// audiences).
func NewTokenReviewer(cs kubernetes.Interface, audience string) *TokenReviewer {
	return &TokenReviewer{cs: cs, audience: audience}
}

func invalidPodToken(format string, args ...any) error {
	return model.Errorf(model.KindForbidden, "pod_token_invalid", format, args...)
}

// Review implements PodTokenReviewer. The token never appears in errors.
func (t *TokenReviewer) Review(ctx context.Context, token string) (PodIdentity, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if t.audience != "" {
		tr.Spec.Audiences = []string{t.audience}
	}
	res, err := t.cs.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return PodIdentity{}, model.Wrap(model.KindUnavailable, "token_review_unavailable", "cannot verify the pod token", err)
	}
	return podIdentity(res.Status, t.audience)
}

// podIdentity checks a TokenReview status: authenticated, for the audience,
// a service account, bound to a pod.
func podIdentity(st authenticationv1.TokenReviewStatus, audience string) (PodIdentity, error) {
	if !st.Authenticated {
		return PodIdentity{}, invalidPodToken("the pod token is not valid (expired, revoked, its pod gone, or not for audience %q)", audience)
	}
	if audience != "" && !slices.Contains(st.Audiences, audience) {
		return PodIdentity{}, invalidPodToken("the pod token is not for audience %q", audience)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" {
		return PodIdentity{}, invalidPodToken("the pod token is not a service-account token")
	}
	name, uid := st.User.Extra[ExtraPodName], st.User.Extra[ExtraPodUID]
	if len(name) != 1 || len(uid) != 1 || name[0] == "" || uid[0] == "" {
		return PodIdentity{}, invalidPodToken("the pod token is not bound to a pod")
	}
	return PodIdentity{Namespace: ns, ServiceAccount: sa, PodName: name[0], PodUID: types.UID(uid[0])}, nil
}
