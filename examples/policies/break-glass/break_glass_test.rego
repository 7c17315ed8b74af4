package irsa.authz_test

import data.irsa.authz

# A fixed clock: 2026-12-01T12:00:00Z.
now := time.parse_rfc3339_ns("2026-12-01T12:00:00Z")

responder := {"username": "oncall", "admin": false, "groups": ["irsa-break-glass"], "attributes": {"break_glass_ticket": "INC-4711", "break_glass_until": "2026-12-01T13:00:00Z"}}

test_ticket_opens_the_glass if {
	every action in {"mapping.write", "workload.map_foreign", "service_account.delete"} {
		authz.allow with input as {"identity": responder, "request": {"action": action}}
			with time.now_ns as now
	}
}

test_no_ticket_no_glass if {
	not authz.allow with input as {"identity": object.remove(responder, ["attributes"]), "request": {"action": "mapping.write"}}
		with time.now_ns as now
}

test_expired_ticket if {
	not authz.allow with input as {"identity": responder, "request": {"action": "mapping.write"}}
		with time.now_ns as time.parse_rfc3339_ns("2026-12-01T13:00:01Z")
}

test_ticket_without_the_group if {
	not authz.allow with input as {"identity": object.union(responder, {"groups": []}), "request": {"action": "mapping.write"}}
		with time.now_ns as now
}

test_unknown_action_stays_closed if {
	not authz.allow with input as {"identity": responder, "request": {"action": "something.else"}}
		with time.now_ns as now
}

test_admins_unchanged if {
	authz.allow with input as {"identity": {"admin": true}, "request": {"action": "mapping.write"}}
	not authz.allow with input as {"identity": {"admin": true}, "request": {"action": "workload.map_foreign"}}
}
