package model

// Grant is a role pair the policy granted to a caller, with the org it came
// from. Its JSON is the shape policies return in irsa.mapping.grants.
type Grant struct {
	Org string `json:"org"`
	RolePair
}

// Pairs returns the role pairs of grants.
func Pairs(grants []Grant) []RolePair {
	pairs := make([]RolePair, 0, len(grants))
	for _, g := range grants {
		pairs = append(pairs, g.RolePair)
	}
	return pairs
}
