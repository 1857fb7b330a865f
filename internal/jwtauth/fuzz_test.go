package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/nodefix"
)

// FuzzVerify feeds Verify arbitrary tokens. Properties: no panic; a token
// Verify accepts says alg HS256, carries an HMAC-SHA256 of its first two
// parts made with the secret, and the claims Verify returns are the ones
// its payload holds.
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 60s -parallel 1 ./internal/jwtauth/
func FuzzVerify(f *testing.F) {
	now := time.Now()
	for _, role := range Roles {
		tok, err := Mint(secret, "42", role, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	for _, tok := range []string{
		nodefix.MintToken(secret, "u-7", "mentor", time.Hour),
		nodefix.MintToken(secret, "42", "student", -time.Minute),
		nodefix.MintToken(secret, "42", "student", 0),
		nodefix.MintToken("other-secret", "42", "student", time.Hour),
		nodefix.MintTokenClaims(secret, map[string]any{"sub": "42", "role": "student",
			"exp": now.Add(2 * time.Hour).Unix(), "nbf": now.Add(time.Hour).Unix()}),
		nodefix.MintTokenClaims(secret, map[string]any{"sub": []any{"42"}, "role": 7, "exp": "soon"}),
		unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims42(now)),
		unsigned(map[string]any{"alg": "HS256"}, claims42(now)),
		signed("HS384", claims42(now)),
		signed("RS256", claims42(now)),
		tamper(nodefix.MintToken(secret, "42", "student", time.Hour)),
		"", "a.b", "a.b.c", "..", "not-a-token", "eyJhbGciOiJIUzI1NiJ9..",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(secret, tok)
		if err != nil {
			return
		}
		checkAccepted(t, tok, c)
	})
}

// FuzzVerifyMutated mints a token for fuzzed claims, checks that they come
// back exactly, then changes one byte of it (or cuts it) and checks that
// whatever Verify still accepts carries a signature made with the secret.
//
//	go test -run '^$' -fuzz '^FuzzVerifyMutated$' -fuzztime 60s -parallel 1 ./internal/jwtauth/
func FuzzVerifyMutated(f *testing.F) {
	f.Add("42", "student", int64(time.Hour), uint16(0), byte('x'), false)
	f.Add("u-7", "mentor", int64(time.Minute), uint16(40), byte('A'), false)
	f.Add("ñandú 🍊", "admin", int64(24*time.Hour), uint16(200), byte('.'), true)
	f.Add("", "root", int64(-1), uint16(5), byte(0), false)
	f.Add(" \t", "student", int64(time.Second), uint16(1000), byte('='), true)
	f.Fuzz(func(t *testing.T, sub, role string, ttl int64, at uint16, b byte, cut bool) {
		before := time.Now()
		tok, err := Mint(secret, sub, role, time.Duration(ttl))
		if err != nil {
			return
		}
		c, err := Verify(secret, tok)
		if err != nil {
			if time.Duration(ttl) <= 2*time.Second && strings.Contains(err.Error(), "expired") {
				return // exp is in whole seconds: a ttl under a second or two may lapse before Verify
			}
			t.Fatalf("Verify refuses what Mint(%q, %q, %d) made: %v", sub, role, ttl, err)
		}
		exp := before.Add(time.Duration(ttl)).Truncate(time.Second)
		if c.Sub != sub || c.Role != role || c.Exp.Before(exp) || c.Exp.After(time.Now().Add(time.Duration(ttl))) {
			t.Fatalf("Mint(%q, %q, %d) then Verify = %+v; want the same sub, role and an exp near %s", sub, role, ttl, c, exp)
		}

		i := int(at) % len(tok)
		mutated := tok[:i] + string([]byte{b}) + tok[i+1:]
		if cut {
			mutated = tok[:i]
		}
		if c, err := Verify(secret, mutated); err == nil {
			checkAccepted(t, mutated, c)
		}
	})
}

// checkAccepted is what must hold of a token Verify accepted.
func checkAccepted(t *testing.T, tok string, c Claims) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %q, which has %d parts", tok, len(parts))
	}
	head, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(head, &h) != nil || h.Alg != Algorithm {
		t.Fatalf("accepted %q, whose header is %q", tok, head)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("accepted %q, whose signature was not made with the secret", tok)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var p struct {
		Sub  string  `json:"sub"`
		Role string  `json:"role"`
		Exp  float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("accepted %q, whose payload %q does not decode: %v", tok, payload, err)
	}
	if c.Sub != p.Sub || c.Role != p.Role || c.Exp.Unix() != int64(p.Exp) {
		t.Fatalf("accepted %q as %+v; its payload says %s", tok, c, payload)
	}
	if !ValidRole(c.Role) || strings.TrimSpace(c.Sub) == "" || c.Exp.Before(time.Now().Add(-time.Second)) {
		t.Fatalf("accepted %q with claims %+v", tok, c)
	}
}

// Found by FuzzVerifyMutated: Mint accepted a sub that is not UTF-8, and
// the token named U+FFFD instead (another user, for every such sub).
func TestMintRefusesNonUTF8Sub(t *testing.T) {
	if tok, err := Mint(secret, "user-\xb1", RoleStudent, time.Hour); !errors.Is(err, ErrClaims) {
		t.Fatalf("Mint = %q, %v; want ErrClaims", tok, err)
	}
}
