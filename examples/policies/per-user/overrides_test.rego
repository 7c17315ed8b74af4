package irsa.grants_test

import data.irsa.grants

list := {"org": "irsa-iamrole-list-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-list-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-list-bucket-role", "update_iam_role_trust_policy": true}

read := {"org": "irsa-iamrole-read-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

update := {"org": "irsa-iamrole-update-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"irsa-iamrole-list-bucket": [list], "irsa-iamrole-read-bucket": [read], "irsa-iamrole-update-bucket": [update]}

test_override_by_username_adds_to_membership if {
	grants.grants == {list, update} with input as {"identity": {"username": "alice", "id": "u1", "organizations": ["irsa-iamrole-list-bucket"]}}
		with data.mappings as mappings
}

test_override_by_id if {
	grants.grants == {read} with input as {"identity": {"username": "bob", "id": "6441e3e0f5e0c93c5b6e4f02", "organizations": []}}
		with data.mappings as mappings
}

test_no_override if {
	grants.grants == {list} with input as {"identity": {"username": "carol", "id": "u3", "organizations": ["irsa-iamrole-list-bucket"]}}
		with data.mappings as mappings
}
