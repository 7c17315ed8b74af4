package sdk

// Regenerate the gRPC code from proto/ with `make generate` (or
// `go generate ./plugins/sdk/`). protoc comes from Debian's protobuf-compiler
// package; the Go generators are pinned as tools in go.mod.
//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go -C ../.. tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go -C ../.. tool -n protoc-gen-go-grpc) --proto_path=proto --go_out=. --go_opt=module=github.com/irsa-broker/irsa-broker/plugins/sdk --go-grpc_out=. --go-grpc_opt=module=github.com/irsa-broker/irsa-broker/plugins/sdk identity/v1/identity.proto"
