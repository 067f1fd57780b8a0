package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword returns the bcrypt hash of password at cost (bcrypt.MinCost
// to bcrypt.MaxCost; 0 is bcrypt.DefaultCost, etcd's). It is deliberately
// slow: call it on the member proposing a change, never in apply.
func HashPassword(password string, cost int) ([]byte, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return bcrypt.GenerateFromPassword([]byte(password), cost)
}

// Tokens are "kvs1." + base64url(payload) + "." + base64url(mac), where
// payload is the user's token generation (8 bytes big-endian), the expiry
// in Unix nanoseconds (8 bytes big-endian) and the user name, and mac is
// HMAC-SHA256 under the store's secret of the prefix and the payload.
const tokenPrefix = "kvs1."

const tokenPayloadFixed = 16

// Authenticate checks name's password and returns a token for it valid
// for ttl from now. Auth must be enabled (ErrAuthNotEnabled); an unknown
// user, a wrong password or a no-password user is ErrAuthFailed. The
// bcrypt comparison runs outside the store's lock. A password changed
// while it runs leaves the token invalid.
func (s *Store) Authenticate(name, password string, now time.Time, ttl time.Duration) (string, error) {
	s.mu.RLock()
	enabled := s.enabled
	u, ok := s.users[name]
	var hash []byte
	var generation uint64
	if ok {
		hash, generation = u.hash, u.generation
		ok = !u.noPassword
	}
	s.mu.RUnlock()
	if !enabled {
		return "", ErrAuthNotEnabled
	}
	if !ok || bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return "", ErrAuthFailed
	}
	return s.issue(name, generation, now.Add(ttl))
}

// IssueToken returns a token for name valid for ttl from now, without a
// password: for a user authenticated otherwise (a client certificate).
// Auth must be enabled; an unknown user is ErrUserNotFound.
func (s *Store) IssueToken(name string, now time.Time, ttl time.Duration) (string, error) {
	s.mu.RLock()
	u, ok := s.users[name]
	enabled := s.enabled
	var generation uint64
	if ok {
		generation = u.generation
	}
	s.mu.RUnlock()
	switch {
	case !enabled:
		return "", ErrAuthNotEnabled
	case !ok:
		return "", ErrUserNotFound
	}
	return s.issue(name, generation, now.Add(ttl))
}

func (s *Store) issue(name string, generation uint64, expiry time.Time) (string, error) {
	s.mu.RLock()
	secret := s.secret
	s.mu.RUnlock()
	if secret == nil {
		return "", ErrAuthNotEnabled // disabled meanwhile
	}
	payload := binary.BigEndian.AppendUint64(nil, generation)
	payload = binary.BigEndian.AppendUint64(payload, uint64(expiry.UnixNano()))
	payload = append(payload, name...)
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(tokenMAC(secret, payload)), nil
}

func tokenMAC(secret, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenPrefix))
	m.Write(payload)
	return m.Sum(nil)
}

// VerifyToken returns the user a token was issued to, if it is valid at
// now: signed under the current secret, not expired, of a user that
// exists and has not changed its password since. Anything else, auth
// disabled included, is ErrInvalidAuthToken.
func (s *Store) VerifyToken(token string, now time.Time) (string, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", fmt.Errorf("%w: unknown format", ErrInvalidAuthToken)
	}
	encPayload, encMAC, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("%w: malformed", ErrInvalidAuthToken)
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(encPayload)
	mac, err2 := enc.DecodeString(encMAC)
	if err1 != nil || err2 != nil || len(payload) < tokenPayloadFixed {
		return "", fmt.Errorf("%w: malformed", ErrInvalidAuthToken)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.secret == nil || !hmac.Equal(mac, tokenMAC(s.secret, payload)) {
		return "", fmt.Errorf("%w: bad signature", ErrInvalidAuthToken)
	}
	generation := binary.BigEndian.Uint64(payload)
	expiry := int64(binary.BigEndian.Uint64(payload[8:]))
	name := string(payload[tokenPayloadFixed:])
	if now.UnixNano() >= expiry {
		return "", fmt.Errorf("%w: expired", ErrInvalidAuthToken)
	}
	u, ok := s.users[name]
	if !ok || u.generation != generation {
		return "", fmt.Errorf("%w: user deleted or password changed", ErrInvalidAuthToken)
	}
	return name, nil
}
