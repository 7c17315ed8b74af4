// Package brokerapi is the wire contract between the broker and its clients
// (the sidecar, irsactl, notebooks that call the legacy endpoints): paths,
// headers, the error body, the run-id grammar, the Domino labels and the
// workload types. The broker, the sidecar and irsactl all import it, so the
// copies cannot drift. It depends on the standard library only.
package brokerapi

import (
	"errors"
	"regexp"
	"slices"
	"strings"
)

// Legacy endpoints (the v1.8 service's, byte-compatible).
const (
	PathHealthz         = "/healthz"
	PathReadyz          = "/readyz"
	PathMap             = "/map_iam_roles_to_pod_sa"
	PathMyRoleMappings  = "/my_role_mappings"
	PathRoleMappings    = "/role_mappings"
	PathUpdateMapping   = "/update_role_mapping"
	PathUpdateMultirole = "/update_multirole_mapping"
	PathDeleteMapping   = "/delete_role_mapping"
	PathServiceAccount  = "/service_account"
	PathV2              = "/v2"
	PathV2WhoAmI        = PathV2 + "/whoami"
	PathV2Status        = PathV2 + "/status"
	PathV2Grants        = PathV2 + "/grants"
	PathV2Map           = PathV2 + "/map"
	PathV2Preview       = PathV2 + "/preview"
	PathV2Mappings      = PathV2 + "/mappings"
	// PathV2Trust lists the proxy-role pools, their members and subjects (admin).
	PathV2Trust = PathV2 + "/trust"
	// PathV2Decisions lists recent policy decisions; /{id} is one of them (admin).
	PathV2Decisions = PathV2 + "/decisions"
)

// Headers.
const (
	// HeaderAuthorization carries "Bearer <token>".
	HeaderAuthorization = "Authorization"
	// HeaderDominoAPIKey carries a Domino API key.
	HeaderDominoAPIKey = "X-Domino-Api-Key"
	// HeaderPodToken carries the pod's own projected service-account token,
	// which the broker may verify with TokenReview to bind the request to the pod.
	HeaderPodToken = "X-Irsa-Pod-Token"
	// HeaderRequestID is echoed on every answer and named in error bodies.
	HeaderRequestID = "X-Request-Id"
)

// ErrorBody is the JSON shape of every error answer:
// {"error":{"code":"...","message":"...","request_id":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an error answer.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// MapRequest is the body of POST /map_iam_roles_to_pod_sa and /v2/map.
type MapRequest struct {
	RunID        string `json:"run_id"`
	WorkloadType string `json:"irsa_workload_type,omitempty"`
}

// Domino's pod labels.
const (
	// LabelExecutionID holds the run id on every pod of a run.
	LabelExecutionID = "dominodatalab.com/execution-id"
	// LabelStartingUser holds the id of the user who started the run.
	LabelStartingUser = "dominodatalab.com/starting-user-id"
	// LabelWorkloadType is set by the mutations to one of WorkloadTypes.
	LabelWorkloadType = "dominodatalab.com/irsa-workload-type"
	// LabelAppName is app.kubernetes.io/name: run-<id> on run pods.
	LabelAppName = "app.kubernetes.io/name"
	// RunPrefix precedes the run id in LabelAppName and in per-run service
	// account names (run-<id>).
	RunPrefix = "run-"
)

// Workload types the legacy API accepts in irsa_workload_type.
const (
	WorkloadEdge          = "edge-workload"
	WorkloadClusterMaster = "cluster-master"
	WorkloadClusterWorker = "cluster-worker"
	WorkloadClusterEdge   = "cluster-edge"
)

// WorkloadTypes lists every accepted workload type.
var WorkloadTypes = []string{WorkloadEdge, WorkloadClusterMaster, WorkloadClusterWorker, WorkloadClusterEdge}

// runIDRE is the grammar of a run id: it becomes part of a service-account
// name (run-<id>, an RFC 1123 label) and of an IAM condition value, so it
// must be a lowercase DNS label and can never carry IAM wildcards.
var runIDRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// MaxRunIDLength keeps run-<id> within a 63-character DNS label.
const MaxRunIDLength = 63 - len(RunPrefix)

// TypicalRunIDLength is the length of Domino's run ids: 24 hex digits (a
// MongoDB ObjectId). The grammar allows others; capacity estimates use this.
const TypicalRunIDLength = 24

// Errors of the grammar; their text is what callers see.
var (
	ErrRunIDMissing  = errors.New("run_id is required")
	ErrRunIDWildcard = errors.New("run_id must not contain IAM wildcard characters")
	ErrRunIDGrammar  = errors.New("run_id must be lowercase letters, digits and '-', at most 59 characters, starting and ending with a letter or digit")
	ErrWorkloadType  = errors.New("irsa_workload_type must be one of " + strings.Join(WorkloadTypes, ", "))
)

// ValidateRunID rejects anything that is not a plausible run id (invariant 5).
func ValidateRunID(id string) error {
	switch {
	case id == "":
		return ErrRunIDMissing
	case strings.ContainsAny(id, "*?"):
		return ErrRunIDWildcard
	case len(id) > MaxRunIDLength || !runIDRE.MatchString(id):
		return ErrRunIDGrammar
	}
	return nil
}

// ValidateWorkloadType accepts "" or one of WorkloadTypes.
func ValidateWorkloadType(t string) error {
	if t == "" || slices.Contains(WorkloadTypes, t) {
		return nil
	}
	return ErrWorkloadType
}
