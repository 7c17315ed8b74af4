package irsa.authz_test

import data.irsa.authz

test_editor_may_write_mappings if {
	authz.allow with input as {"identity": {"groups": ["irsa-mapping-editors"]}, "request": {"action": "mapping.write"}}
}

test_editor_may_not_delete if {
	not authz.allow with input as {"identity": {"groups": ["irsa-mapping-editors"]}, "request": {"action": "mapping.delete"}}
}

test_admin_may_map_foreign_runs if {
	authz.allow with input as {"identity": {"admin": true}, "request": {"action": "workload.map_foreign"}}
}

test_user_may_not_map_foreign_runs if {
	not authz.allow with input as {"identity": {"admin": false, "groups": ["irsa-mapping-editors"]}, "request": {"action": "workload.map_foreign"}}
}
