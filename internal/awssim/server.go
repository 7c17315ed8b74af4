package awssim

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultQuota is IAM's default AssumeRolePolicySizeQuota.
const DefaultQuota = 2048

// DefaultRolesQuota is IAM's default number of roles per account (RolesQuota).
const DefaultRolesQuota = 1000

// DefaultRegion is the region used when Options.Region is empty.
const DefaultRegion = "us-east-1"

const (
	maxBodyBytes          = 1 << 20
	defaultMaxSession     = 3600
	rolePolicySizeQuota   = 10240
	chainedSessionMaxSecs = 3600
)

// Options configure a Server.
type Options struct {
	Logger           hclog.Logger
	Region           string // default "us-east-1"
	AllowHTTPIssuers bool
	IssuerCAs        *x509.CertPool // extra roots for HTTPS issuers
	HTTPClient       *http.Client   // optional, used to fetch discovery/JWKS
	Now              func() time.Time
}

// Server simulates IAM and STS on one http.Handler. All methods are safe for
// concurrent use.
type Server struct {
	log       hclog.Logger
	region    string
	allowHTTP bool
	now       func() time.Time
	keys      *keyCache
	knobs     *knobs

	mu       sync.RWMutex
	accounts map[string]*account
	creds    map[string]*accessKey // long-term keys by access key id
	sessions map[string]*session   // temporary credentials by access key id
}

var _ http.Handler = (*Server)(nil)

type account struct {
	id         string
	quota      int
	rolesQuota int
	roles      map[string]*role          // by lower-case name
	policies   map[string]*managedPolicy // customer managed policies by ARN
	history    map[string][]roleVersion  // by lower-case name, oldest first
	providers  map[string]*oidcProvider  // by ARN
}

type role struct {
	name, path, arn, id, description string
	created                          time.Time
	maxSession                       int
	trustDoc                         string
	trust                            *policy
	inline                           map[string]*inlinePolicy
	attached                         []string // managed policy ARNs, in attach order
	boundary                         string   // permissions boundary policy ARN, "" for none
	tags                             []tag    // in the order they were set
}

type tag struct{ key, value string }

type inlinePolicy struct {
	name string
	doc  string
	pol  *policy
}

// roleVersion is the state of a role as STS sees it, kept for propagation delay.
type roleVersion struct {
	at         time.Time
	deleted    bool
	name, arn  string
	id         string
	maxSession int
	trust      *policy
	inline     []*policy // identity policies: inline, then attached managed ones
	boundary   *policy   // nil: no permissions boundary
}

type oidcProvider struct {
	arn        string
	url        string // as registered, with scheme
	hostPath   string // url without scheme: the ARN suffix and condition-key prefix
	clientIDs  []string
	thumbprint []string
	created    time.Time
}

type accessKey struct {
	id, secret, account, user string
	denied                    []string // lower-case action patterns, e.g. "iam:updateassumerolepolicy"
}

type session struct {
	accessKeyID, secret, token string
	account                    string
	roleName, roleARN, roleID  string
	sessionName                string
	expires                    time.Time
}

// caller is an authenticated request principal.
type caller struct {
	account string
	arn     string // arn:aws:iam::A:root, arn:aws:iam::A:user/U or arn:aws:sts::A:assumed-role/R/S
	userID  string
	key     *accessKey
	sess    *session
}

// New returns a Server with no accounts.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	region := opts.Region
	if region == "" {
		region = DefaultRegion
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Server{
		log:       log.Named("awssim"),
		region:    region,
		allowHTTP: opts.AllowHTTPIssuers,
		now:       now,
		keys:      newKeyCache(opts, now),
		knobs:     newKnobs(),
		accounts:  map[string]*account{},
		creds:     map[string]*accessKey{},
		sessions:  map[string]*session{},
	}
}

var (
	accountIDRe = regexp.MustCompile(`^[0-9]{12}$`)
	roleNameRe  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	sessionRe   = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	pathRe      = regexp.MustCompile(`^/([\x21-\x7E]*/)?$`)
)

// ErrInvalidArgument is returned by the Go API for malformed arguments.
var ErrInvalidArgument = errors.New("awssim: invalid argument")

// AddAccount creates an account (or updates its quota); quota 0 means 2048.
func (s *Server) AddAccount(accountID string, quota int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accountLocked(accountID)
	if quota > 0 {
		a.quota = quota
	}
}

func (s *Server) accountLocked(id string) *account {
	a, ok := s.accounts[id]
	if !ok {
		a = &account{
			id:         id,
			quota:      DefaultQuota,
			rolesQuota: DefaultRolesQuota,
			roles:      map[string]*role{},
			policies:   map[string]*managedPolicy{},
			history:    map[string][]roleVersion{},
			providers:  map[string]*oidcProvider{},
		}
		s.accounts[id] = a
	}
	return a
}

// SetQuota sets an account's AssumeRolePolicySizeQuota (0 means 2048).
func (s *Server) SetQuota(accountID string, quota int) {
	if quota <= 0 {
		quota = DefaultQuota
	}
	s.AddAccount(accountID, quota)
}

// SetRolesQuota sets an account's RolesQuota, the number of roles CreateRole admits
// before it fails with LimitExceeded (0 means 1000, IAM's default).
func (s *Server) SetRolesQuota(accountID string, quota int) {
	if quota <= 0 {
		quota = DefaultRolesQuota
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountLocked(accountID).rolesQuota = quota
}

// AddAccessKey registers a long-term key acting as the account root. deniedActions
// (e.g. "iam:UpdateAssumeRolePolicy", "UpdateAssumeRolePolicy" or "iam:*") are refused
// with AccessDenied. The account is created when missing.
func (s *Server) AddAccessKey(accountID, accessKeyID, secret string, deniedActions ...string) error {
	return s.AddUserAccessKey(accountID, "", accessKeyID, secret, deniedActions...)
}

// AddUserAccessKey is AddAccessKey for an IAM user: the caller ARN becomes
// arn:aws:iam::<acct>:user/<userName> instead of the account root.
func (s *Server) AddUserAccessKey(accountID, userName, accessKeyID, secret string, deniedActions ...string) error {
	if !accountIDRe.MatchString(accountID) {
		return fmt.Errorf("%w: account id %q must be 12 digits", ErrInvalidArgument, accountID)
	}
	if accessKeyID == "" || secret == "" {
		return fmt.Errorf("%w: access key id and secret are required", ErrInvalidArgument)
	}
	if userName != "" && !roleNameRe.MatchString(userName) {
		return fmt.Errorf("%w: user name %q", ErrInvalidArgument, userName)
	}
	denied := make([]string, 0, len(deniedActions))
	for _, d := range deniedActions {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if !strings.Contains(d, ":") {
			d = "*:" + d
		}
		denied = append(denied, d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.creds[accessKeyID]; ok && k.account != accountID {
		return fmt.Errorf("%w: access key %s already belongs to account %s", ErrInvalidArgument, accessKeyID, k.account)
	}
	s.accountLocked(accountID)
	s.creds[accessKeyID] = &accessKey{id: accessKeyID, secret: secret, account: accountID, user: userName, denied: denied}
	return nil
}

// CreateRole creates a role as the IAM API would (same validation and errors, as
// *APIError) and returns its ARN. path "" means "/".
func (s *Server) CreateRole(accountID, name, path, trustPolicyJSON string) (string, error) {
	r, err := s.createRole(accountID, roleSpec{name: name, path: path, trust: trustPolicyJSON})
	if err != nil {
		return "", err
	}
	return r.arn, nil
}

// CreatePolicy creates a customer managed policy as the IAM API would and returns its
// ARN (arn:aws:iam::<acct>:policy<path><name>). path "" means "/".
func (s *Server) CreatePolicy(accountID, name, path, policyJSON string) (string, error) {
	p, err := s.createPolicy(accountID, name, path, policyJSON, "")
	if err != nil {
		return "", err
	}
	return p.arn, nil
}

// AttachRolePolicy attaches a managed policy to a role.
func (s *Server) AttachRolePolicy(accountID, roleName, policyARN string) error {
	return asError(s.attachRolePolicy(accountID, roleName, policyARN))
}

// PutRolePolicy adds or replaces an inline permission policy on a role.
func (s *Server) PutRolePolicy(accountID, roleName, policyName, policyJSON string) error {
	return asError(s.putRolePolicy(accountID, roleName, policyName, policyJSON))
}

// UntagRole removes the tags with these keys from a role.
func (s *Server) UntagRole(accountID, roleName string, keys ...string) error {
	return asError(s.untagRole(accountID, roleName, keys))
}

// UpdateAssumeRolePolicy replaces a role's trust policy (quota and syntax enforced).
func (s *Server) UpdateAssumeRolePolicy(accountID, roleName, trustPolicyJSON string) error {
	return asError(s.updateTrust(accountID, roleName, trustPolicyJSON))
}

// AddOIDCProvider registers an OpenID Connect provider and returns its ARN
// (arn:aws:iam::<acct>:oidc-provider/<issuer without scheme>).
func (s *Server) AddOIDCProvider(accountID, issuerURL string, clientIDs []string) (string, error) {
	p, err := s.createOIDCProvider(accountID, issuerURL, clientIDs, nil)
	if err != nil {
		return "", err
	}
	return p.arn, nil
}

// TrustPolicy returns a role's current trust policy, decoded (as it was submitted).
func (s *Server) TrustPolicy(accountID, roleName string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[accountID]
	if !ok {
		return "", errNoSuchRole(roleName)
	}
	r, ok := a.roles[strings.ToLower(roleName)]
	if !ok {
		return "", errNoSuchRole(roleName)
	}
	return r.trustDoc, nil
}

// RoleARN returns a role's ARN.
func (s *Server) RoleARN(accountID, roleName string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a, ok := s.accounts[accountID]; ok {
		if r, ok := a.roles[strings.ToLower(roleName)]; ok {
			return r.arn, nil
		}
	}
	return "", errNoSuchRole(roleName)
}

func (s *Server) lookupCredentials(keyID, token string) (*caller, string, *APIError) {
	invalid := senderErr(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.creds[keyID]; ok {
		c := &caller{account: k.account, key: k, arn: "arn:aws:iam::" + k.account + ":root", userID: k.account}
		if k.user != "" {
			c.arn = "arn:aws:iam::" + k.account + ":user/" + k.user
			c.userID = "AIDA" + stableID(k.account+"/"+k.user)
		}
		return c, k.secret, nil
	}
	sess, ok := s.sessions[keyID]
	if !ok || token == "" || token != sess.token {
		return nil, "", invalid
	}
	if !s.now().Before(sess.expires) {
		return nil, "", senderErr(http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired")
	}
	return &caller{
		account: sess.account,
		arn:     "arn:aws:sts::" + sess.account + ":assumed-role/" + sess.roleName + "/" + sess.sessionName,
		userID:  sess.roleID + ":" + sess.sessionName,
		sess:    sess,
	}, sess.secret, nil
}

// ServeHTTP serves both IAM (Version 2010-05-08) and STS (Version 2011-06-15) Query
// actions, told apart by Action.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(w, reqID, iamNamespace, senderErr(http.StatusMethodNotAllowed, "InvalidAction", "Unsupported HTTP method %s", r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, reqID, iamNamespace, senderErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body too large"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, reqID, iamNamespace, senderErr(http.StatusBadRequest, "MalformedQueryString", "The query string is malformed"))
		return
	}
	for k, v := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = v
		}
	}
	action := form.Get("Action")
	version := form.Get("Version")
	svc, ok := actionService[action]
	ns := iamNamespace
	if ok && svc == "sts" {
		ns = stsNamespace
	}
	if !ok {
		v := version
		if v == "" {
			v = "unknown"
		}
		writeError(w, reqID, ns, senderErr(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, v))
		return
	}
	wantVersion := iamVersion
	if svc == "sts" {
		wantVersion = stsVersion
	}
	if version != "" && version != wantVersion {
		writeError(w, reqID, ns, senderErr(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, version))
		return
	}

	s.knobs.count(action)
	if err := s.knobs.delay(r.Context(), action); err != nil {
		return // client went away
	}
	if s.knobs.throttled(action) {
		s.log.Debug("throttled", "action", action)
		writeError(w, reqID, ns, errThrottling())
		return
	}

	var c *caller
	if action != "AssumeRoleWithWebIdentity" {
		var aerr *APIError
		c, aerr = s.authenticate(r, body, svc)
		if aerr != nil {
			s.log.Debug("authentication failed", "action", action, "code", aerr.Code)
			writeError(w, reqID, ns, aerr)
			return
		}
	}
	result, aerr := s.dispatch(r, action, form, c)
	if aerr != nil {
		s.log.Debug("request failed", "action", action, "code", aerr.Code, "message", aerr.Message)
		writeError(w, reqID, ns, aerr)
		return
	}
	writeResult(w, reqID, action, ns, result)
}

var actionService = map[string]string{
	"CreateRole": "iam", "GetRole": "iam", "ListRoles": "iam", "DeleteRole": "iam",
	"UpdateAssumeRolePolicy": "iam", "PutRolePolicy": "iam", "GetRolePolicy": "iam",
	"DeleteRolePolicy": "iam", "ListRolePolicies": "iam", "CreateOpenIDConnectProvider": "iam",
	"CreatePolicy": "iam", "GetPolicy": "iam", "DeletePolicy": "iam",
	"AttachRolePolicy": "iam", "DetachRolePolicy": "iam", "ListAttachedRolePolicies": "iam",
	"PutRolePermissionsBoundary": "iam", "DeleteRolePermissionsBoundary": "iam",
	"TagRole": "iam", "UntagRole": "iam", "ListRoleTags": "iam",
	"GetOpenIDConnectProvider": "iam", "GetAccountSummary": "iam",
	"AssumeRoleWithWebIdentity": "sts", "AssumeRole": "sts", "GetCallerIdentity": "sts",
}

func (s *Server) dispatch(r *http.Request, action string, form url.Values, c *caller) (any, *APIError) {
	switch action {
	case "AssumeRoleWithWebIdentity":
		return s.assumeRoleWithWebIdentity(r.Context(), form)
	case "AssumeRole":
		return s.assumeRole(c, form)
	case "GetCallerIdentity":
		return getCallerIdentityResult{Arn: c.arn, UserID: c.userID, Account: c.account}, nil
	}
	return s.iamAction(action, form, c)
}

// --- helpers ---

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(idAlphabet))))
		b[i] = idAlphabet[v.Int64()]
	}
	return string(b)
}

func randomSecret(n int) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alpha))))
		b[i] = alpha[v.Int64()]
	}
	return string(b)
}

// stableID derives a 17-character id from a name (for user ids that must not change).
func stableID(name string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	b := make([]byte, 17)
	for i := range b {
		b[i] = idAlphabet[h%32]
		h = h/32 ^ (h << 7) ^ uint64(i)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
