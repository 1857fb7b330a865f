// Package jwtauth mints and verifies the JWTs of the Socket.IO handshake
// (HS256 with a shared secret; claims sub, role and exp), and resolves the
// secret: the configured one, or in development a random one kept in the
// state home, so `frutos token` and the workers of one home agree.
package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Roles a token may carry.
const (
	RoleStudent = "student"
	RoleMentor  = "mentor"
	RoleAdmin   = "admin"
)

// Roles lists the accepted roles.
var Roles = []string{RoleStudent, RoleMentor, RoleAdmin}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return slices.Contains(Roles, role) }

// DefaultLeeway is the clock skew Verify tolerates on exp (and nbf when
// present): none, so an expired token is refused at once (it was accepted
// for 5 s more). auth.leeway configures it (VerifyLeeway).
const DefaultLeeway = 0

// Algorithm is the only signing algorithm minted and accepted.
const Algorithm = "HS256"

// Claims are what a verified token says.
type Claims struct {
	Sub  string
	Role string
	Exp  time.Time
}

// Verify's errors; each wraps one of these (errors.Is), with details.
var (
	ErrMissing   = errors.New("no token")
	ErrNoSecret  = errors.New("no secret")
	ErrMalformed = errors.New("malformed token")
	ErrAlgorithm = errors.New("signing algorithm refused (only " + Algorithm + " is accepted)")
	ErrSignature = errors.New("bad signature")
	ErrExpired   = errors.New("token expired")
	ErrClaims    = errors.New("bad claims")
)

type tokenClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Mint returns an HS256 token for sub with role, valid for ttl from now.
func Mint(secret, sub, role string, ttl time.Duration) (string, error) {
	switch {
	case secret == "":
		return "", ErrNoSecret
	case strings.TrimSpace(sub) == "":
		return "", fmt.Errorf("%w: sub (the user id) is empty", ErrClaims)
	case !utf8.ValidString(sub):
		// JSON would carry U+FFFD instead: the token would name another user.
		return "", fmt.Errorf("%w: sub %q is not UTF-8 text", ErrClaims, sub)
	case !ValidRole(role):
		return "", fmt.Errorf("%w: role %q is not one of %s", ErrClaims, role, strings.Join(Roles, ", "))
	case ttl <= 0:
		return "", fmt.Errorf("%w: ttl %s is not positive", ErrClaims, ttl)
	}
	now := time.Now()
	c := tokenClaims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// Verify checks token against secret: HS256 only (alg none and every other
// algorithm are refused before the signature is looked at), a valid
// signature, exp present and not past (with Leeway), sub not empty, role
// one of Roles.
func Verify(secret, token string) (Claims, error) {
	return VerifyLeeway(secret, token, DefaultLeeway)
}

// VerifyLeeway is Verify tolerating leeway of clock skew on exp and nbf.
func VerifyLeeway(secret, token string, leeway time.Duration) (Claims, error) {
	if secret == "" {
		return Claims{}, ErrNoSecret
	}
	if token == "" {
		return Claims{}, ErrMissing
	}
	if err := checkHeader(token); err != nil {
		return Claims{}, err
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{Algorithm}), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway))
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, expText(c.ExpiresAt))
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Claims{}, fmt.Errorf("%w: exp is missing", ErrClaims)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, ErrSignature
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	default:
		return Claims{}, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	if strings.TrimSpace(c.Subject) == "" {
		return Claims{}, fmt.Errorf("%w: sub is empty", ErrClaims)
	}
	if !ValidRole(c.Role) {
		return Claims{}, fmt.Errorf("%w: role %q is not one of %s", ErrClaims, c.Role, strings.Join(Roles, ", "))
	}
	return Claims{Sub: c.Subject, Role: c.Role, Exp: c.ExpiresAt.Time}, nil
}

// Why a handshake was refused, as its connect_error carries it in
// data.code: what a developer can act on, never a secret or a claim's value.
const (
	CodeMissingToken = "missing_token"
	CodeMalformed    = "malformed"
	CodeBadSignature = "bad_signature"
	CodeExpired      = "expired"
	CodeBadClaims    = "bad_claims"
)

// Codes lists the failure codes, in a stable order (metrics).
var Codes = []string{CodeMissingToken, CodeMalformed, CodeBadSignature, CodeExpired, CodeBadClaims}

// Code is the failure code of a Verify error: missing_token, malformed
// (not a JWT), bad_signature (another secret, or an algorithm other than
// HS256), expired, or bad_claims (no exp, empty sub, unknown role; and any
// error not from Verify).
func Code(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return CodeMissingToken
	case errors.Is(err, ErrMalformed):
		return CodeMalformed
	case errors.Is(err, ErrSignature), errors.Is(err, ErrAlgorithm), errors.Is(err, ErrNoSecret):
		return CodeBadSignature
	case errors.Is(err, ErrExpired):
		return CodeExpired
	}
	return CodeBadClaims
}

// checkHeader refuses any algorithm but HS256 by reading the header itself,
// so the error says so (the library reports it as a bad signature).
func checkHeader(token string) error {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("%w: header is not JSON", ErrMalformed)
	}
	if h.Alg != Algorithm {
		return fmt.Errorf("%w: alg %q", ErrAlgorithm, h.Alg)
	}
	return nil
}

func expText(d *jwt.NumericDate) string {
	if d == nil {
		return "an unknown time"
	}
	return d.UTC().Format(time.RFC3339)
}
