# The default authorization policy: admins (the identity's admin flag) may
# manage mappings and service accounts, and read the status and the recent
# policy decisions (GET /v2/decisions). Nobody may map a run someone else
# started (invariant 6); a site that wants admins or a group to do so adds a
# rule for "workload.map_foreign" in --policy-dir.
#
# input.request.action names the action, e.g. "mapping.write".
package irsa.authz

default allow := false

admin_actions := {
	"mapping.read",
	"mapping.write",
	"mapping.delete",
	"service_account.write",
	"service_account.delete",
	"status.read",
	"decision.read",
}

allow if {
	input.identity.admin == true
	input.request.action in admin_actions
}
