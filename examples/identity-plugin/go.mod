module github.com/irsa-broker/irsa-broker/examples/identity-plugin

go 1.25.0

require (
	github.com/hashicorp/go-hclog v1.6.3
	github.com/irsa-broker/irsa-broker/plugins/sdk v1.0.0
	go.yaml.in/yaml/v3 v3.0.5
)

require (
	github.com/fatih/color v1.13.0 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/hashicorp/go-plugin v1.8.0 // indirect
	github.com/hashicorp/yamux v0.1.2 // indirect
	github.com/mattn/go-colorable v0.1.12 // indirect
	github.com/mattn/go-isatty v0.0.17 // indirect
	github.com/oklog/run v1.1.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260706201446-f0a921348800 // indirect
	google.golang.org/grpc v1.84.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// Stands in for the published SDK release while the example lives in this
// repository; an integrator's plugin requires the release and has no replace.
replace github.com/irsa-broker/irsa-broker/plugins/sdk => ../../plugins/sdk
