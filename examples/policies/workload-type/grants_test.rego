package irsa.grants_test

import data.irsa.grants

read := {"org": "data", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

update := {"org": "data", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"data": [read, update]}

test_cluster_worker_without_the_sensitive_role if {
	grants.grants == {read} with input as {"identity": {"organizations": ["data"]}, "workload": {"workload_type": "cluster-worker"}}
		with data.mappings as mappings
}

test_cluster_master_gets_both if {
	grants.grants == {read, update} with input as {"identity": {"organizations": ["data"]}, "workload": {"workload_type": "cluster-master"}}
		with data.mappings as mappings
}

test_workspace_gets_both if {
	grants.grants == {read, update} with input as {"identity": {"organizations": ["data"]}, "workload": {"workload_type": "edge-workload"}}
		with data.mappings as mappings
}

test_my_mappings_without_workload_gets_both if {
	grants.grants == {read, update} with input as {"identity": {"organizations": ["data"]}}
		with data.mappings as mappings
}
