# Recipe: per-user overrides. Adds to the default grants: a few users get the
# pairs of orgs they are not members of (a contractor's single role, a
# service user), named by username or by user id, the stable choice when
# usernames can change.
package irsa.grants

# username or user id → orgs whose pairs that user also gets.
user_orgs := {
	"alice": {"irsa-iamrole-update-bucket"},
	"6441e3e0f5e0c93c5b6e4f02": {"irsa-iamrole-read-bucket"},
}

grants contains pair if {
	some who in [input.identity.username, input.identity.id]
	some org in object.get(user_orgs, who, set())
	some pair in data.mappings[org]
}
