package nodefix

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// MintToken returns an HS256 JWT with claims sub, role, iat and exp =
// now+ttl. A negative ttl gives an already expired token; ttl 0 omits exp.
func MintToken(secret, sub, role string, ttl time.Duration) string {
	now := time.Now()
	claims := map[string]any{"sub": sub, "role": role, "iat": now.Unix()}
	if ttl != 0 {
		claims["exp"] = now.Add(ttl).Unix()
	}
	return MintTokenClaims(secret, claims)
}

// MintTokenClaims returns an HS256 JWT with exactly the given claims.
func MintTokenClaims(secret string, claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("nodefix.MintTokenClaims: " + err.Error())
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
