// Package identity is the broker's side of identity providers: it turns request
// credentials into an sdk.Identity through a provider, with a short-lived cache
// keyed by a hash of the credential, and counts lookups in the legacy metrics.
package identity
