package cluster

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// user is a Domino user of the fake Domino API.
type user struct {
	ID, Name string
	Admin    bool
	Orgs     []string
}

// users by token.
var users = map[string]user{
	"alice-token": {ID: "6441e3e0f5e0c93c5b6e4f01", Name: "alice", Orgs: []string{"irsa-iamrole-list-bucket"}},
	"bob-token":   {ID: "6441e3e0f5e0c93c5b6e4f02", Name: "bob", Orgs: []string{"irsa-iamrole-list-bucket"}},
	"admin-token": {ID: "6441e3e0f5e0c93c5b6e4f00", Name: "admin", Admin: true},
}

// startDomino serves the two Domino endpoints the domino identity plugin
// calls (plugins/domino), on the host end of the node's veth: Domino is
// outside this project, the broker's plugin and its HTTP calls are real.
func startDomino() error {
	mux := http.NewServeMux()
	who := func(r *http.Request) (user, bool) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if k := r.Header.Get("X-Domino-Api-Key"); k != "" {
			tok = k
		}
		u, ok := users[tok]
		return u, ok
	}
	mux.HandleFunc("GET /v4/auth/principal", func(w http.ResponseWriter, r *http.Request) {
		u, ok := who(r)
		// Domino answers an unknown credential with 200 and isAnonymous.
		_ = json.NewEncoder(w).Encode(map[string]any{"canonicalId": u.ID, "canonicalName": u.Name, "isAdmin": u.Admin, "isAnonymous": !ok})
	})
	mux.HandleFunc("GET /v4/organizations/self", func(w http.ResponseWriter, r *http.Request) {
		u, ok := who(r)
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		orgs := []map[string]string{}
		for _, o := range u.Orgs {
			orgs = append(orgs, map[string]string{"name": o})
		}
		_ = json.NewEncoder(w).Encode(orgs)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(env.c.HostIP, "0"))
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, mux) }()
	env.closers = append(env.closers, func() { ln.Close() })
	env.dominoURL = "http://" + ln.Addr().String()
	return nil
}
