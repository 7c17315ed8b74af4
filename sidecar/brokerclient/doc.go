// Package brokerclient calls the broker's map_iam_roles_to_pod_sa endpoint with
// the user's access token and the pod's projected token, and classifies its errors.
package brokerclient
