# Recipe: by identity provider. Replaces the default grants (same file
# name): callers authenticated by the "ci" provider (a CI system's OIDC
# tokens, see --identity-providers in docs/plugins.md) get only the orgs
# allowed to CI, whatever organizations their identity claims; callers of
# every other provider (Domino API keys and tokens) get their organizations as
# by default. input.identity.provider is set by the broker, never by the caller.
package irsa.grants

provider_orgs := {"ci": {"irsa-iamrole-read-bucket"}}

provider := object.get(input.identity, "provider", "")

grants contains pair if {
	not provider in object.keys(provider_orgs)
	some org in input.identity.organizations
	some pair in data.mappings[org]
}

grants contains pair if {
	some org in input.identity.organizations
	org in object.get(provider_orgs, provider, set())
	some pair in data.mappings[org]
}
