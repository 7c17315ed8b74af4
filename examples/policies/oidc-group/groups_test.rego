package irsa.grants_test

import data.irsa.grants

read := {"org": "irsa-iamrole-read-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-read-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-read-bucket-role", "update_iam_role_trust_policy": true}

update := {"org": "irsa-iamrole-update-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"irsa-iamrole-read-bucket": [read], "irsa-iamrole-update-bucket": [update]}

test_group_member_gets_the_groups_orgs if {
	grants.grants == {read} with input as {"identity": {"organizations": [], "groups": ["data-science"]}}
		with data.mappings as mappings
}

test_groups_add_up if {
	grants.grants == {read, update} with input as {"identity": {"organizations": [], "groups": ["data-science", "data-engineering"]}}
		with data.mappings as mappings
}

test_organizations_still_count if {
	grants.grants == {update} with input as {"identity": {"organizations": ["irsa-iamrole-update-bucket"], "groups": ["marketing"]}}
		with data.mappings as mappings
}

test_no_groups_no_extra if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": []}}
		with data.mappings as mappings
}
