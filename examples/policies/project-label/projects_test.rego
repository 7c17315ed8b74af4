package irsa.grants_test

import data.irsa.grants

update := {"org": "irsa-iamrole-update-bucket", "iam_role_arn": "arn:aws:iam::524112250363:role/acme-update-bucket-role", "proxy_iam_role_arn": "arn:aws:iam::946429944765:role/acme-update-bucket-role", "update_iam_role_trust_policy": true}

mappings := {"irsa-iamrole-update-bucket": [update]}

test_project_run_gets_the_projects_org if {
	grants.grants == {update} with input as {"identity": {"organizations": []}, "workload": {"labels": {"dominodatalab.com/project-name": "quarterly-close"}}}
		with data.mappings as mappings
}

test_other_project_gets_nothing if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": []}, "workload": {"labels": {"dominodatalab.com/project-name": "sandbox"}}}
		with data.mappings as mappings
}

test_no_labels_gets_nothing if {
	count(grants.grants) == 0 with input as {"identity": {"organizations": []}, "workload": {"run_id": "r1"}}
		with data.mappings as mappings
}
