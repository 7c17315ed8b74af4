package awssim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type xmlCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type xmlAssumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type assumeRoleWithWebIdentityResult struct {
	XMLName                     struct{}           `xml:"AssumeRoleWithWebIdentityResult"`
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	Audience                    string             `xml:"Audience"`
	AssumedRoleUser             xmlAssumedRoleUser `xml:"AssumedRoleUser"`
	Credentials                 xmlCredentials     `xml:"Credentials"`
	Provider                    string             `xml:"Provider"`
}

type assumeRoleResult struct {
	XMLName          struct{}           `xml:"AssumeRoleResult"`
	AssumedRoleUser  xmlAssumedRoleUser `xml:"AssumedRoleUser"`
	Credentials      xmlCredentials     `xml:"Credentials"`
	PackedPolicySize int                `xml:"PackedPolicySize,omitempty"`
}

type getCallerIdentityResult struct {
	XMLName struct{} `xml:"GetCallerIdentityResult"`
	Arn     string   `xml:"Arn"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
}

// parseRoleARN splits arn:aws:iam::<acct>:role/<path/>name.
func parseRoleARN(arn string) (acct, name string, ok bool) {
	rest, found := strings.CutPrefix(arn, "arn:aws:iam::")
	if !found {
		return "", "", false
	}
	acct, res, found := strings.Cut(rest, ":")
	if !found || !accountIDRe.MatchString(acct) || !strings.HasPrefix(res, "role/") {
		return "", "", false
	}
	name = res[strings.LastIndexByte(res, '/')+1:]
	if !roleNameRe.MatchString(name) {
		return "", "", false
	}
	return acct, name, true
}

func (s *Server) stsCommonParams(form url.Values) (acct, name, sessionName string, aerr *APIError) {
	arn := form.Get("RoleArn")
	if arn == "" {
		return "", "", "", errMissingParam("RoleArn")
	}
	sessionName = form.Get("RoleSessionName")
	if sessionName == "" {
		return "", "", "", errMissingParam("RoleSessionName")
	}
	if !sessionRe.MatchString(sessionName) {
		return "", "", "", errValidation("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", sessionName)
	}
	acct, name, ok := parseRoleARN(arn)
	if !ok {
		return "", "", "", errValidation("%s is invalid", arn)
	}
	return acct, name, sessionName, nil
}

// duration validates DurationSeconds against the role and (for chained sessions) the
// one-hour cap.
func duration(form url.Values, maxSession int, chained bool) (time.Duration, *APIError) {
	secs := 3600
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			return 0, errValidation("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", v)
		}
		secs = n
	}
	if chained && secs > chainedSessionMaxSecs {
		return 0, errValidation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if secs > maxSession {
		return 0, errValidation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	return time.Duration(secs) * time.Second, nil
}

func (s *Server) assumeRoleWithWebIdentity(ctx context.Context, form url.Values) (any, *APIError) {
	acct, name, sessionName, aerr := s.stsCommonParams(form)
	if aerr != nil {
		return nil, aerr
	}
	if form.Get("WebIdentityToken") == "" {
		return nil, errMissingParam("WebIdentityToken")
	}
	id, aerr := s.verifyWebIdentity(ctx, acct, form.Get("WebIdentityToken"))
	if aerr != nil {
		return nil, aerr
	}
	denied := senderErr(http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	v := s.roleView(acct, name)
	if v == nil {
		return nil, denied
	}
	prefix := id.provider.hostPath + ":"
	req := evalRequest{
		PrincipalType: "Federated",
		Principals:    []string{id.provider.arn},
		Action:        "sts:AssumeRoleWithWebIdentity",
		Context: map[string][]string{
			prefix + "sub":          {id.subject},
			prefix + "aud":          {id.audience},
			"aws:FederatedProvider": {id.provider.arn},
			"sts:RoleSessionName":   {sessionName},
		},
	}
	if v.trust.evaluate(req) != decisionAllow {
		s.log.Debug("web identity denied by trust policy", "role", v.arn, "subject", id.subject)
		return nil, denied
	}
	d, aerr := duration(form, v.maxSession, false)
	if aerr != nil {
		return nil, aerr
	}
	sess := s.issueSession(acct, v, sessionName, d)
	return assumeRoleWithWebIdentityResult{
		SubjectFromWebIdentityToken: id.subject,
		Audience:                    id.audience,
		AssumedRoleUser:             assumedRoleUser(sess),
		Credentials:                 sessionCredentials(sess),
		Provider:                    id.issuer,
	}, nil
}

func (s *Server) assumeRole(c *caller, form url.Values) (any, *APIError) {
	acct, name, sessionName, aerr := s.stsCommonParams(form)
	if aerr != nil {
		return nil, aerr
	}
	target := form.Get("RoleArn")
	denied := senderErr(http.StatusForbidden, "AccessDenied",
		"User: %s is not authorized to perform: sts:AssumeRole on resource: %s", c.arn, target)
	// Identity side: the key's deny list, or the session role's permission policies.
	if aerr := s.authorize(c, "sts:AssumeRole", target, target, nil); aerr != nil {
		return nil, denied
	}
	v := s.roleView(acct, name)
	if v == nil || v.arn != target {
		return nil, denied
	}
	principals := []string{principalARNOf(c), "arn:aws:iam::" + c.account + ":root", c.account}
	if c.sess != nil {
		principals = append(principals, c.arn)
	}
	req := evalRequest{
		PrincipalType: "AWS",
		Principals:    principals,
		Action:        "sts:AssumeRole",
		Context: map[string][]string{
			"aws:PrincipalArn":     {principalARNOf(c)},
			"aws:PrincipalAccount": {c.account},
			"sts:RoleSessionName":  {sessionName},
		},
	}
	if eid := form.Get("ExternalId"); eid != "" {
		req.Context["sts:ExternalId"] = []string{eid}
	}
	if v.trust.evaluate(req) != decisionAllow {
		s.log.Debug("assume role denied by trust policy", "role", v.arn, "caller", c.arn)
		return nil, denied
	}
	d, aerr := duration(form, v.maxSession, c.sess != nil)
	if aerr != nil {
		return nil, aerr
	}
	sess := s.issueSession(acct, v, sessionName, d)
	return assumeRoleResult{AssumedRoleUser: assumedRoleUser(sess), Credentials: sessionCredentials(sess)}, nil
}

func (s *Server) issueSession(acct string, v *roleVersion, sessionName string, d time.Duration) *session {
	tok := make([]byte, 96)
	_, _ = rand.Read(tok)
	now := s.now()
	sess := &session{
		accessKeyID: "ASIA" + randomID(16),
		secret:      randomSecret(40),
		token:       "FwoGZXIvYXdzE" + base64.StdEncoding.EncodeToString(tok),
		account:     acct,
		roleName:    v.name,
		roleARN:     v.arn,
		roleID:      v.id,
		sessionName: sessionName,
		expires:     now.Add(d),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions)%1024 == 1023 { // now and then, forget sessions expired for a while
		for k, old := range s.sessions {
			if now.Sub(old.expires) > time.Hour {
				delete(s.sessions, k)
			}
		}
	}
	s.sessions[sess.accessKeyID] = sess
	return sess
}

func assumedRoleUser(sess *session) xmlAssumedRoleUser {
	return xmlAssumedRoleUser{
		Arn:           "arn:aws:sts::" + sess.account + ":assumed-role/" + sess.roleName + "/" + sess.sessionName,
		AssumedRoleID: sess.roleID + ":" + sess.sessionName,
	}
}

func sessionCredentials(sess *session) xmlCredentials {
	return xmlCredentials{
		AccessKeyID:     sess.accessKeyID,
		SecretAccessKey: sess.secret,
		SessionToken:    sess.token,
		Expiration:      awsTime(sess.expires),
	}
}
