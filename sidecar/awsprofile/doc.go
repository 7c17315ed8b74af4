// Package awsprofile parses the AWS config file the broker returns: its profiles
// and, for verification, each source profile's role and token file.
package awsprofile
