# Example: replaces the default authorization policy (same file name). Admins
# keep every admin action; members of the group "irsa-mapping-editors" may
# also read and write mappings (not delete them, not manage service
# accounts); and admins may map a run someone else started, for support.
package irsa.authz

default allow := false

admin_actions := {
	"mapping.read",
	"mapping.write",
	"mapping.delete",
	"service_account.write",
	"service_account.delete",
	"workload.map_foreign",
	"decision.read",
}

allow if {
	input.identity.admin == true
	input.request.action in admin_actions
}

allow if {
	"irsa-mapping-editors" in object.get(input.identity, "groups", [])
	input.request.action in {"mapping.read", "mapping.write"}
}
