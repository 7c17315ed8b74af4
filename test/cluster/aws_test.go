package cluster

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/awssim"
)

const (
	eksAccount    = "946429944765"
	assetsAccount = "524112250363"
	audience      = "sts.amazonaws.com"
	region        = "us-west-2"
	proxyRole     = "acme-list-bucket-role"
	brokerRole    = "irsa-broker"
)

// startAWS serves the simulator on the host end of the node's veth, where
// pods reach it, with the cluster's service-account issuer as the OIDC
// provider: the broker's own role (IRSA, as EKS gives it), one proxy role
// and its asset role in another account.
func startAWS() error {
	env.sim = awssim.New(awssim.Options{Region: region, IssuerCAs: env.c.CP.CAPool,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "awssim", Level: hclog.Warn})})
	ln, err := net.Listen("tcp", net.JoinHostPort(env.c.HostIP, "0"))
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, env.sim) }()
	env.closers = append(env.closers, func() { ln.Close() })
	env.simURL = "http://" + ln.Addr().String()
	env.provider = strings.TrimPrefix(env.c.CP.IssuerURL, "https://")

	sim := env.sim
	// A raised trust-policy size quota: 50 concurrent runs of one org do
	// not fit AWS's default of 2,048 characters (issue 13 lifts that
	// ceiling with proxy-role pools).
	sim.AddAccount(eksAccount, 10240)
	sim.AddAccount(assetsAccount, 0)
	providerARN, err := sim.AddOIDCProvider(eksAccount, env.c.CP.IssuerURL, []string{audience})
	if err != nil {
		return err
	}
	federated := func(subs ...string) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":%q},"StringLike":{"%s:sub":[%s]}}}]}`,
			providerARN, env.provider, audience, env.provider, quoteAll(subs))
	}
	env.providerARN = providerARN
	if err := addBrokerRole(brokerRole, "system:serviceaccount:"+fieldNS+":"+brokerSA); err != nil {
		return err
	}
	if env.proxyARN, err = sim.CreateRole(eksAccount, proxyRole, "/", federated()); err != nil {
		return err
	}
	perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, assetsAccount, proxyRole)
	if err := sim.PutRolePolicy(eksAccount, proxyRole, "assume-asset-role", perm); err != nil {
		return err
	}
	assetTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}`, eksAccount)
	env.assetARN, err = sim.CreateRole(assetsAccount, proxyRole, "/", assetTrust)
	return err
}

// addBrokerRole creates a broker's own role, trusted by the service account
// of subject, allowed exactly the IAM calls the broker makes
// (deploy/README.md).
func addBrokerRole(name, subject string) error {
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":%q},"StringLike":{"%s:sub":[%q]}}}]}`,
		env.providerARN, env.provider, audience, env.provider, subject)
	if _, err := env.sim.CreateRole(eksAccount, name, "/", trust); err != nil {
		return err
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
		`{"Effect":"Allow","Action":["iam:GetRole","iam:UpdateAssumeRolePolicy"],"Resource":"arn:aws:iam::%s:role/*"},`+
		`{"Effect":"Allow","Action":"iam:GetAccountSummary","Resource":"*"}]}`, eksAccount)
	return env.sim.PutRolePolicy(eksAccount, name, "irsa-broker", policy)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ",")
}

// proxySubjects lists the subjects the proxy role's trust policy holds.
func proxySubjects() ([]string, error) {
	doc, err := env.sim.TrustPolicy(eksAccount, proxyRole)
	if err != nil {
		return nil, err
	}
	var subs []string
	for _, part := range strings.Split(doc, `"`) {
		if strings.HasPrefix(part, "system:serviceaccount:") || strings.HasPrefix(part, "*:") {
			subs = append(subs, part)
		}
	}
	return subs, nil
}
