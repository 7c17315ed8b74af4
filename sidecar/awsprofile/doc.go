// Package awsprofile reads the AWS config file the broker returns: Parse reads
// it leniently, Validate accepts only what the broker's renderer writes (and
// ConfirmWithSDK checks that the AWS SDK reads the same), and both yield the
// profiles and, for verification, each web-identity profile's role and token file.
package awsprofile
