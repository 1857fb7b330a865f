package cluster

import (
	"slices"
	"strings"
)

// originPolicy is the configured CORS origins: exact matches, or any
// with "*".
type originPolicy struct {
	any     bool
	origins []string
}

func newOriginPolicy(origins []string) originPolicy {
	p := originPolicy{}
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		p.origins = append(p.origins, strings.ToLower(strings.TrimRight(o, "/")))
	}
	return p
}

func (p originPolicy) allows(origin string) bool {
	return p.any || slices.Contains(p.origins, strings.ToLower(origin))
}

// allowsAny is the engine's CORS check: nil when no origin may call
// (the answers then carry no CORS headers). Allowed origins are reflected,
// "*" included, so that credentials work.
func (p originPolicy) allowsAny() func(string) bool {
	if !p.any && len(p.origins) == 0 {
		return nil
	}
	return p.allows
}
