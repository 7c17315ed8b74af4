# Recipe: grant by OIDC group. Adds to the default grants (organization
# membership): members of an identity-provider group get the role pairs of
# the orgs the group is mapped to here. Groups come from the provider
# (input.identity.groups, e.g. the OIDC plugin's groups claim).
package irsa.grants

# group → orgs whose pairs its members get.
group_orgs := {
	"data-science": {"irsa-iamrole-read-bucket"},
	"data-engineering": {"irsa-iamrole-read-bucket", "irsa-iamrole-update-bucket"},
}

grants contains pair if {
	some group in object.get(input.identity, "groups", [])
	some org in object.get(group_orgs, group, set())
	some pair in data.mappings[org]
}
