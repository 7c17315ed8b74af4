package irsa.grants_test

import data.irsa.grants

pair(org, name, update) := {
	"org": org,
	"iam_role_arn": sprintf("arn:aws:iam::524112250363:role/%s", [name]),
	"proxy_iam_role_arn": sprintf("arn:aws:iam::946429944765:role/%s", [name]),
	"update_iam_role_trust_policy": update,
}

list_pair := pair("irsa-iamrole-list-bucket", "acme-list-bucket-role", true)

read_pair := pair("irsa-iamrole-read-bucket", "acme-read-bucket-role", false)

multi_read := pair("irsa-iamrole-multi", "acme-read-bucket-role", false)

multi_update := pair("irsa-iamrole-multi", "acme-update-bucket-role", true)

mappings := {
	"irsa-iamrole-list-bucket": [list_pair],
	"irsa-iamrole-read-bucket": [read_pair],
	"irsa-iamrole-multi": [multi_read, multi_update],
}

test_no_orgs_no_grants if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": []}}
		with data.mappings as mappings
}

test_missing_organizations_no_grants if {
	count(grants.grants) == 0 with input as {"identity": {}}
		with data.mappings as mappings
}

test_one_org if {
	grants.grants == {list_pair} with input as {"identity": {"organizations": ["irsa-iamrole-list-bucket"]}}
		with data.mappings as mappings
}

test_two_orgs if {
	want := {list_pair, read_pair}
	grants.grants == want with input as {"identity": {"organizations": ["irsa-iamrole-list-bucket", "irsa-iamrole-read-bucket"]}}
		with data.mappings as mappings
}

test_multi_role_org if {
	want := {multi_read, multi_update}
	grants.grants == want with input as {"identity": {"organizations": ["irsa-iamrole-multi"]}}
		with data.mappings as mappings
}

test_org_without_mapping if {
	grants.grants == {list_pair} with input as {"identity": {"organizations": ["unmapped", "irsa-iamrole-list-bucket"]}}
		with data.mappings as mappings
}

test_same_roles_in_two_orgs_kept_per_org if {
	m := {
		"a": [pair("a", "acme-list-bucket-role", true)],
		"b": [pair("b", "acme-list-bucket-role", true)],
	}
	count(grants.grants) == 2 with input as {"identity": {"organizations": ["a", "b"]}}
		with data.mappings as m
}

test_grant_shape if {
	some g in grants.grants with input as {"identity": {"organizations": ["irsa-iamrole-read-bucket"]}}
		with data.mappings as mappings
	object.keys(g) == {"org", "iam_role_arn", "proxy_iam_role_arn", "update_iam_role_trust_policy"}
	g.update_iam_role_trust_policy == false
}

test_no_mappings_at_all if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": ["irsa-iamrole-list-bucket"]}}
		with data.mappings as {}
}
