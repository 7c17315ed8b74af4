// Package domino is the identity provider that asks the Domino API who is
// calling: GET /v4/auth/principal and /v4/organizations/self, forwarding the
// caller's Authorization or X-Domino-Api-Key header.
package domino
