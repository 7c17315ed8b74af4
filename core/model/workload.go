package model

// WorkloadRequest asks which workload a run is.
type WorkloadRequest struct {
	RunID        string
	WorkloadType string
	// CallerID and Username are the caller's; per-user service accounts are
	// named after the username.
	CallerID, Username string
	// PodToken is the pod's projected service-account token when the sidecar
	// sent one; resolvers that can verify it bind the request to that pod.
	PodToken string
}

// Workload is a resolved run, as policies see it in input.workload.
type Workload struct {
	RunID          string            `json:"run_id"`
	Type           string            `json:"workload_type,omitempty"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"service_account"`
	Pod            string            `json:"pod,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	// OwnerID is the Domino user id that started the run ("" when the pod
	// does not say). Policies do not see it; the broker compares it with the
	// caller's id.
	OwnerID string `json:"-"`
}

// Pod is what the broker keeps of a workload's pod.
type Pod struct {
	Namespace, Name string
	UID             string
	RunID, UserID   string
	ServiceAccount  string
}

// TrustChange is one subject added to or removed from one role.
type TrustChange struct {
	Added   bool
	Role    string
	Subject string
	// Cause: "map", "undo", "pod-gone" or "reconcile".
	Cause string
	// Pod is the workload concerned, when known.
	Pod Pod
}
