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

const secret = "test-secret-0123456789"

func TestMintVerifyRoundTrip(t *testing.T) {
	for _, role := range Roles {
		tok, err := Mint(secret, "42", role, time.Hour)
		if err != nil {
			t.Fatalf("Mint: %v", err)
		}
		c, err := Verify(secret, tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Sub != "42" || c.Role != role || time.Until(c.Exp) < 59*time.Minute || time.Until(c.Exp) > time.Hour {
			t.Errorf("claims = %+v", c)
		}
	}
}

// The Node fixture mints tokens the way the seed's backend does
// (jsonwebtoken-compatible HS256); they must verify, and ours must look
// like them.
func TestVerifyAcceptsForeignHS256(t *testing.T) {
	c, err := Verify(secret, nodefix.MintToken(secret, "u-7", "mentor", time.Minute))
	if err != nil || c.Sub != "u-7" || c.Role != "mentor" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	tok, _ := Mint(secret, "42", "student", time.Minute)
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var head map[string]any
	if err := json.Unmarshal(h, &head); err != nil || head["alg"] != "HS256" || head["typ"] != "JWT" {
		t.Errorf("header = %s", h)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", nodefix.MintToken(secret, "42", "student", -time.Minute), ErrExpired},
		{"expired 2s ago (no leeway by default)", nodefix.MintToken(secret, "42", "student", -2*time.Second), ErrExpired},
		{"no exp", nodefix.MintToken(secret, "42", "student", 0), ErrClaims},
		{"wrong secret", nodefix.MintToken("other-secret", "42", "student", time.Hour), ErrSignature},
		{"bad role", nodefix.MintToken(secret, "42", "teacher", time.Hour), ErrClaims},
		{"no role", nodefix.MintTokenClaims(secret, map[string]any{"sub": "42", "exp": now.Add(time.Hour).Unix()}), ErrClaims},
		{"empty sub", nodefix.MintToken(secret, "", "student", time.Hour), ErrClaims},
		{"blank sub", nodefix.MintToken(secret, "  ", "student", time.Hour), ErrClaims},
		{"no sub", nodefix.MintTokenClaims(secret, map[string]any{"role": "student", "exp": now.Add(time.Hour).Unix()}), ErrClaims},
		{"not yet valid", nodefix.MintTokenClaims(secret, map[string]any{"sub": "42", "role": "student",
			"exp": now.Add(2 * time.Hour).Unix(), "nbf": now.Add(time.Hour).Unix()}), ErrClaims},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims42(now)), ErrAlgorithm},
		{"alg None", unsigned(map[string]any{"alg": "None"}, claims42(now)), ErrAlgorithm},
		{"alg HS384 with the right secret", signed("HS384", claims42(now)), ErrAlgorithm},
		{"alg RS256 carrying an HMAC", signed("RS256", claims42(now)), ErrAlgorithm},
		{"no alg", unsigned(map[string]any{"typ": "JWT"}, claims42(now)), ErrAlgorithm},
		{"garbage", "not-a-token", ErrMalformed},
		{"two parts", "a.b", ErrMalformed},
		{"empty", "", ErrMissing},
		{"tampered payload", tamper(nodefix.MintToken(secret, "42", "student", time.Hour)), ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verify(secret, tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.want)
			}
		})
	}
	if _, err := Verify("", nodefix.MintToken("", "42", "student", time.Hour)); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Verify with an empty secret = %v, want ErrNoSecret", err)
	}
}

// An expired token was accepted for 5 s more. By default there is no
// leeway; auth.leeway tolerates clock skew between the backend that
// minted a token and this host.
func TestVerifyLeeway(t *testing.T) {
	tok := nodefix.MintTokenClaims(secret, map[string]any{"sub": "42", "role": "student", "exp": time.Now().Add(-2 * time.Second).Unix()})
	if _, err := Verify(secret, tok); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify of a token expired 2s ago = %v, want ErrExpired", err)
	}
	if _, err := VerifyLeeway(secret, tok, 10*time.Second); err != nil {
		t.Errorf("VerifyLeeway(10s) of a token expired 2s ago = %v, want accepted", err)
	}
}

// What a refused client reads in connect_error's data.code.
func TestCodeOfEachFailure(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		token, want string
	}{
		{"", CodeMissingToken},
		{"not-a-token", CodeMalformed},
		{"a.b", CodeMalformed},
		{nodefix.MintToken("other-secret", "42", "student", time.Hour), CodeBadSignature},
		{tamper(nodefix.MintToken(secret, "42", "student", time.Hour)), CodeBadSignature},
		{unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims42(now)), CodeBadSignature},
		{nodefix.MintToken(secret, "42", "student", -time.Minute), CodeExpired},
		{nodefix.MintToken(secret, "42", "teacher", time.Hour), CodeBadClaims},
		{nodefix.MintToken(secret, "42", "student", 0), CodeBadClaims},
	} {
		_, err := Verify(secret, tc.token)
		if got := Code(err); got != tc.want {
			t.Errorf("Code(Verify(%.20q)) = %q (err %v), want %q", tc.token, got, err, tc.want)
		}
	}
	if got := Code(errors.New("an authenticator's own error")); got != CodeBadClaims {
		t.Errorf("Code(other) = %q", got)
	}
}

func TestMintRefuses(t *testing.T) {
	tests := []struct {
		name                string
		secret, sub, role   string
		ttl                 time.Duration
		want                error
		wantInMessageSubstr string
	}{
		{"no secret", "", "42", "student", time.Hour, ErrNoSecret, "no secret"},
		{"empty sub", secret, "", "student", time.Hour, ErrClaims, "sub"},
		{"bad role", secret, "42", "root", time.Hour, ErrClaims, `role "root"`},
		{"zero ttl", secret, "42", "student", 0, ErrClaims, "ttl"},
		{"negative ttl", secret, "42", "student", -time.Second, ErrClaims, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Mint(tt.secret, tt.sub, tt.role, tt.ttl)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantInMessageSubstr) {
				t.Errorf("Mint = %v, want %v mentioning %q", err, tt.want, tt.wantInMessageSubstr)
			}
		})
	}
}

func claims42(now time.Time) map[string]any {
	return map[string]any{"sub": "42", "role": "admin", "exp": now.Add(time.Hour).Unix()}
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsigned builds header.payload. with no signature, as alg none does.
func unsigned(header, claims map[string]any) string { return seg(header) + "." + seg(claims) + "." }

// signed builds a token whose header claims alg but whose signature is an
// HMAC-SHA256 with the right secret: only the header is wrong.
func signed(alg string, claims map[string]any) string {
	s := seg(map[string]any{"alg": alg, "typ": "JWT"}) + "." + seg(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamper changes the payload (role student -> admin) and keeps the signature.
func tamper(tok string) string {
	p := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	c["role"] = "admin"
	return p[0] + "." + seg(c) + "." + p[2]
}
