# Recipe: by workload type. Replaces the default grants (same file name):
# organization membership as by default, but the sensitive roles are never
# given to Spark/Ray/Dask cluster workers and executors (cluster-worker), which
# run code the user does not drive interactively. Workspaces, jobs and the
# cluster's master still get them.
package irsa.grants

sensitive_roles := {"arn:aws:iam::524112250363:role/acme-update-bucket-role"}

workload_type := object.get(input, ["workload", "workload_type"], "")

grants contains pair if {
	some org in input.identity.organizations
	some pair in data.mappings[org]
	not withheld(pair)
}

withheld(pair) if {
	workload_type == "cluster-worker"
	pair.iam_role_arn in sensitive_roles
}
