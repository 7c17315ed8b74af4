# Example: replaces the default grants policy (same file name) with one that
# gives Spark/Ray/Dask cluster workers only the read-only roles of their
# user's organizations; every other workload gets what the default gives.
# Read-only roles are recognised here by a naming convention.
#
#   irsa-broker serve --policy-dir examples/policies ...
package irsa.grants

grants contains pair if {
	some org in input.identity.organizations
	some pair in data.mappings[org]
	allowed(pair)
}

workload_type := object.get(input, ["workload", "workload_type"], "")

allowed(_) if workload_type != "cluster-worker"

allowed(pair) if {
	workload_type == "cluster-worker"
	endswith(pair.iam_role_arn, "-read-bucket-role")
}
