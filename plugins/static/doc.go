// Package static is an identity provider that reads its users from a YAML file:
// each user has a token (or the SHA-256 of one), an id, a username, an admin flag
// and organizations. It is meant for development, tests and small installations.
package static
