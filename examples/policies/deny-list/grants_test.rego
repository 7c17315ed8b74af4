package irsa.grants_test

import data.irsa.grants

read := {"org": "irsa-iamrole-read-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

update := {"org": "irsa-iamrole-update-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"irsa-iamrole-read-bucket": [read], "irsa-iamrole-update-bucket": [update]}

both := ["irsa-iamrole-read-bucket", "irsa-iamrole-update-bucket"]

test_blocked_user_gets_nothing if {
	count(grants.grants) == 0 with input as {"identity": {"username": "mallory", "id": "u9", "organizations": both}}
		with data.mappings as mappings
}

test_blocked_by_id if {
	count(grants.grants) == 0 with input as {"identity": {"username": "renamed", "id": "mallory", "organizations": both}}
		with data.mappings as mappings
}

test_user_kept_out_of_one_org if {
	grants.grants == {read} with input as {"identity": {"username": "bob", "id": "u2", "organizations": both}}
		with data.mappings as mappings
}

test_others_unaffected if {
	grants.grants == {read, update} with input as {"identity": {"username": "alice", "id": "u1", "organizations": both}}
		with data.mappings as mappings
}
