# Recipe: a break-glass admin rule, with audit. Adds to the default
# authorization: members of the "irsa-break-glass" group may do every admin
# action, mapping other users' runs included, but only while their identity
# carries a ticket (the identity provider's break_glass_ticket attribute,
# e.g. an OIDC claim your IdP adds for an approved emergency) that is not
# expired (break_glass_until, RFC 3339).
#
# The audit: every decision goes to the decision log with its input, so the
# ticket and who used it are recorded with each action it allowed:
#   irsactl decisions --path allow --user <name>
# and `--decision-log` keeps them all. The attribute names avoid the words
# the log treats as credentials (token, secret, ...), so they are kept.
package irsa.authz

break_glass_actions := {
	"mapping.read", "mapping.write", "mapping.delete",
	"service_account.write", "service_account.delete",
	"status.read", "decision.read", "workload.map_foreign",
}

allow if {
	"irsa-break-glass" in object.get(input.identity, "groups", [])
	object.get(input.identity, ["attributes", "break_glass_ticket"], "") != ""
	time.now_ns() < time.parse_rfc3339_ns(object.get(input.identity, ["attributes", "break_glass_until"], "1970-01-01T00:00:00Z"))
	input.request.action in break_glass_actions
}
