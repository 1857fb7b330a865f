package configs

import _ "embed"

// Example is configs/frutos.yaml: every key with its default, commented, and
// a short env.production section. `frutos` can write it out as a starting point.
//
//go:embed frutos.yaml
var Example []byte
