package irsa.grants_test

import data.irsa.grants

read := {"org": "data", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

write := {"org": "data", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"data": [read, write]}

test_workspace_gets_everything if {
	grants.grants == {read, write} with input as {"identity": {"organizations": ["data"]}, "workload": {"workload_type": "edge-workload"}}
		with data.mappings as mappings
}

test_no_workload_type_gets_everything if {
	grants.grants == {read, write} with input as {"identity": {"organizations": ["data"]}}
		with data.mappings as mappings
}

test_cluster_worker_gets_read_only if {
	grants.grants == {read} with input as {"identity": {"organizations": ["data"]}, "workload": {"workload_type": "cluster-worker"}}
		with data.mappings as mappings
}

test_other_org_nothing if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": ["other"]}, "workload": {"workload_type": "cluster-worker"}}
		with data.mappings as mappings
}
