# Recipe: by project (a pod label). Adds to the default grants: runs of the
# listed Domino projects get the pairs of an org whatever their user's
# organizations, so a project's service role follows the project rather than
# its members. Labels are the run pod's (input.workload.labels), set by
# Domino, not by the user; no workload (GET /my_role_mappings), no label.
package irsa.grants

project_label := "dominodatalab.com/project-name"

# project name → orgs whose pairs its runs get.
project_orgs := {"quarterly-close": {"irsa-iamrole-update-bucket"}}

grants contains pair if {
	project := object.get(input, ["workload", "labels", project_label], "")
	some org in object.get(project_orgs, project, set())
	some pair in data.mappings[org]
}
