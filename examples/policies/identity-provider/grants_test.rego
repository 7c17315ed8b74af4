package irsa.grants_test

import data.irsa.grants

read := {"org": "irsa-iamrole-read-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

update := {"org": "irsa-iamrole-update-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"irsa-iamrole-read-bucket": [read], "irsa-iamrole-update-bucket": [update]}

both := ["irsa-iamrole-read-bucket", "irsa-iamrole-update-bucket"]

test_ci_gets_only_the_ci_orgs if {
	grants.grants == {read} with input as {"identity": {"provider": "ci", "organizations": both}}
		with data.mappings as mappings
}

test_ci_needs_the_membership_too if {
	count(grants.grants) == 0 with input as {"identity": {"provider": "ci", "organizations": ["irsa-iamrole-update-bucket"]}}
		with data.mappings as mappings
}

test_domino_gets_its_organizations if {
	grants.grants == {read, update} with input as {"identity": {"provider": "domino", "organizations": both}}
		with data.mappings as mappings
}

test_no_provider_is_not_ci if {
	grants.grants == {read, update} with input as {"identity": {"organizations": both}}
		with data.mappings as mappings
}
