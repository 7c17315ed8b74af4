// Package awsconfig renders the AWS shared config file a workload uses to assume its roles.
package awsconfig
