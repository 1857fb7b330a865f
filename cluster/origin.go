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

// corsOrigin is the library's CORS option: reflect allowed origins only.
func (p originPolicy) corsOrigin() any {
	if p.any {
		return true // reflect the request's origin, so credentials work
	}
	if len(p.origins) == 0 {
		return false
	}
	return func(origin string) bool { return p.allows(origin) }
}
