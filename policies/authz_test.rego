package irsa.authz_test

import data.irsa.authz

test_admin_allowed if {
	authz.allow with input as {"identity": {"admin": true}, "request": {"action": "mapping.write"}}
}

test_non_admin_denied if {
	not authz.allow with input as {"identity": {"admin": false}, "request": {"action": "mapping.write"}}
}

test_missing_admin_denied if {
	not authz.allow with input as {"identity": {}, "request": {"action": "mapping.delete"}}
}

test_truthy_non_bool_admin_denied if {
	not authz.allow with input as {"identity": {"admin": "true"}}
}

test_admin_every_admin_action if {
	every action in {"mapping.read", "mapping.write", "mapping.delete", "service_account.write", "service_account.delete", "status.read", "decision.read"} {
		authz.allow with input as {"identity": {"admin": true}, "request": {"action": action}}
	}
}

test_admin_cannot_map_foreign_workload if {
	not authz.allow with input as {"identity": {"admin": true}, "request": {"action": "workload.map_foreign"}}
}

test_unknown_action_denied if {
	not authz.allow with input as {"identity": {"admin": true}, "request": {"action": "something.else"}}
}

test_non_admin_cannot_read_status if {
	not authz.allow with input as {"identity": {"admin": false}, "request": {"action": "status.read"}}
}

test_non_admin_cannot_read_decisions if {
	not authz.allow with input as {"identity": {"admin": false}, "request": {"action": "decision.read"}}
}
