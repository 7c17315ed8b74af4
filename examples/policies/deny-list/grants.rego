# Recipe: deny lists. Replaces the default grants (same file name):
# organization membership as by default, except that blocked users get
# nothing at all and some users are kept out of some orgs (while an
# investigation runs, or until a training is done). A deny must replace the
# grants rule: rules added in another file can only widen the grants.
package irsa.grants

# Users (username or id) who get no role at all.
blocked_users := {"mallory"}

# username → orgs whose pairs that user does not get.
blocked_orgs := {"bob": {"irsa-iamrole-update-bucket"}}

grants contains pair if {
	not blocked(input.identity)
	some org in input.identity.organizations
	not org in object.get(blocked_orgs, input.identity.username, set())
	some pair in data.mappings[org]
}

blocked(id) if id.username in blocked_users

blocked(id) if id.id in blocked_users
