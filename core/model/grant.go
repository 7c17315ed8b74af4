package model

// Grant is a role pair the policy granted to a caller, with the org it came
// from. Its JSON is the shape policies return in irsa.mapping.grants.
type Grant struct {
	Org string `json:"org"`
	RolePair
}
