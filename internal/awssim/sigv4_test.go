package awssim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestSigV4Failures(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.iam(proxyKey, "wrong-secret").ListRoles(ctx, &iam.ListRolesInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = f.iam("AKIAUNKNOWN000000000", proxySecret).ListRoles(ctx, &iam.ListRolesInput{})
	wantCode(t, err, "InvalidClientTokenId")
	_, err = f.sts(awsConfig(proxyKey, "wrong-secret", "")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
	// The right key works, and failed attempts are not retried by the SDK.
	f.sim.ResetCalls()
	if _, err := f.iam(proxyKey, proxySecret).ListRoles(ctx, &iam.ListRolesInput{}); err != nil {
		t.Fatal(err)
	}
	_, _ = f.iam(proxyKey, "wrong").ListRoles(ctx, &iam.ListRolesInput{})
	if n := f.sim.Calls()["ListRoles"]; n != 2 {
		t.Fatalf("ListRoles calls %d, want 2 (auth errors are not retried)", n)
	}
}

type rawErr struct {
	Status int
	Type   string `xml:"Error>Type"`
	Code   string `xml:"Error>Code"`
	ReqID  string `xml:"RequestId"`
}

func post(t *testing.T, req *http.Request) rawErr {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e rawErr
	if resp.StatusCode != 200 {
		if err := xml.Unmarshal(body, &e); err != nil {
			t.Fatalf("error body is not XML: %s", body)
		}
	}
	e.Status = resp.StatusCode
	return e
}

func signedRequest(t *testing.T, endpoint, body, key, secret, service string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSigV4Raw(t *testing.T) {
	f := newFixture(t)
	body := url.Values{"Action": {"ListRoles"}, "Version": {"2010-05-08"}}.Encode()

	unsigned, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	unsigned.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if e := post(t, unsigned); e.Status != 403 || e.Code != "MissingAuthenticationToken" || e.Type != "Sender" || e.ReqID == "" {
		t.Fatalf("unsigned: %+v", e)
	}
	if e := post(t, signedRequest(t, f.url, body, proxyKey, proxySecret, "iam", time.Now())); e.Status != 200 {
		t.Fatalf("signed: %+v", e)
	}
	if e := post(t, signedRequest(t, f.url, body, proxyKey, proxySecret, "iam", time.Now().Add(-time.Hour))); e.Status != 403 || e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("stale signature: %+v", e)
	}
	if e := post(t, signedRequest(t, f.url, body, proxyKey, proxySecret, "sts", time.Now())); e.Status != 403 || e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong service scope: %+v", e)
	}
	// Body changed after signing.
	req := signedRequest(t, f.url, body, proxyKey, proxySecret, "iam", time.Now())
	tampered := strings.Replace(body, "ListRoles", "ListRolez", 1)
	req.Body = io.NopCloser(strings.NewReader(tampered))
	if e := post(t, req); e.Status != 400 || e.Code != "InvalidAction" {
		// Unknown actions are rejected before authentication, like AWS.
		t.Fatalf("tampered action: %+v", e)
	}
	tampered = body + "&MaxItems=1"
	req = signedRequest(t, f.url, body, proxyKey, proxySecret, "iam", time.Now())
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader(tampered)), int64(len(tampered))
	if e := post(t, req); e.Status != 403 || e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("tampered body: %+v", e)
	}
	// Header-level garbage.
	req = signedRequest(t, f.url, body, proxyKey, proxySecret, "iam", time.Now())
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=foo")
	if e := post(t, req); e.Code != "IncompleteSignature" {
		t.Fatalf("malformed authorization: %+v", e)
	}
	// Wrong version for the action.
	if e := post(t, signedRequest(t, f.url, "Action=ListRoles&Version=2011-06-15", proxyKey, proxySecret, "iam", time.Now())); e.Code != "InvalidAction" {
		t.Fatalf("wrong version: %+v", e)
	}
}

func TestParseAuthorization(t *testing.T) {
	a, aerr := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
	if aerr != nil {
		t.Fatal(aerr)
	}
	if a.AccessKeyID != "AKID" || a.Date != "20240102" || a.Region != "us-east-1" || a.Service != "iam" ||
		strings.Join(a.SignedHeaders, ";") != "host;x-amz-date" || a.Signature != "abc" {
		t.Fatalf("%+v", a)
	}
	for _, bad := range []string{"", "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=x",
		"AWS4-HMAC-SHA256 Credential=a/b/c/aws4_request, SignedHeaders=host, Signature=x",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host"} {
		if _, aerr := parseAuthorization(bad); aerr == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	var ae *APIError
	_, aerr = parseAuthorization("Basic x")
	if !errors.As(error(aerr), &ae) || ae.Code != "IncompleteSignature" {
		t.Fatalf("%v", aerr)
	}
}
