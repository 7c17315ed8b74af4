package sdk

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/irsa-broker/irsa-broker/plugins/sdk/internal/identityv1"
)

// grpcPlugin is the go-plugin glue: it serves impl in the plugin process and
// hands the host a Provider that speaks gRPC.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Provider // nil on the host
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterIdentityProviderServer(s, &grpcServer{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{client: pb.NewIdentityProviderClient(c)}, nil
}

// grpcServer adapts a Provider to the generated service. A panicking
// provider answers with an internal error instead of taking the process down.
type grpcServer struct {
	pb.UnimplementedIdentityProviderServer
	impl Provider
}

func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = toStatus(fmt.Errorf("identity provider panicked: %v", r), "")
	}
}

func (s *grpcServer) Info(ctx context.Context, _ *pb.InfoRequest) (_ *pb.InfoResponse, err error) {
	defer recoverTo(&err)
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err, "")
	}
	return &pb.InfoResponse{Name: info.Name, Version: info.Version, Capabilities: info.Capabilities}, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (_ *pb.ConfigureResponse, err error) {
	defer recoverTo(&err)
	if err := s.impl.Configure(ctx, req.GetConfig()); err != nil {
		return nil, toStatus(err, "")
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *grpcServer) Authenticate(ctx context.Context, req *pb.AuthenticateRequest) (_ *pb.AuthenticateResponse, err error) {
	defer recoverTo(&err)
	id, err := s.impl.Authenticate(ctx, Credentials{Token: req.GetToken(), Header: req.GetHeader()})
	if err != nil {
		return nil, toStatus(err, req.GetToken())
	}
	return &pb.AuthenticateResponse{Identity: identityToProto(id)}, nil
}

// grpcClient is the host's view of a plugin: a Provider whose calls cross the wire.
type grpcClient struct {
	client pb.IdentityProviderClient
}

var _ Provider = (*grpcClient)(nil)

func (c *grpcClient) Info(ctx context.Context) (Info, error) {
	resp, err := c.client.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, fromStatus(err)
	}
	return Info{Name: resp.GetName(), Version: resp.GetVersion(), Capabilities: resp.GetCapabilities()}, nil
}

func (c *grpcClient) Configure(ctx context.Context, config []byte) error {
	_, err := c.client.Configure(ctx, &pb.ConfigureRequest{Config: config})
	return fromStatus(err)
}

func (c *grpcClient) Authenticate(ctx context.Context, creds Credentials) (Identity, error) {
	resp, err := c.client.Authenticate(ctx, &pb.AuthenticateRequest{Token: creds.Token, Header: creds.Header})
	if err != nil {
		return Identity{}, fromStatus(err)
	}
	return identityFromProto(resp.GetIdentity()), nil
}

func identityToProto(id Identity) *pb.Identity {
	out := &pb.Identity{
		Id: id.ID, Username: id.Username, Email: id.Email,
		Organizations: id.Organizations, Groups: id.Groups, Admin: id.Admin, Attributes: id.Attributes,
	}
	if !id.Expiry.IsZero() {
		out.ExpiryUnixNano = id.Expiry.UnixNano()
	}
	return out
}

func identityFromProto(p *pb.Identity) Identity {
	id := Identity{
		ID: p.GetId(), Username: p.GetUsername(), Email: p.GetEmail(),
		Organizations: p.GetOrganizations(), Groups: p.GetGroups(), Admin: p.GetAdmin(), Attributes: p.GetAttributes(),
	}
	if id.Organizations == nil {
		id.Organizations = []string{}
	}
	if n := p.GetExpiryUnixNano(); n != 0 {
		id.Expiry = time.Unix(0, n)
	}
	return id
}
