// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Registration says who may create an account.
type Registration string

// Registration policies.
const (
	// RegistrationOpen lets anyone who reaches the server register.
	RegistrationOpen Registration = "open"
	// RegistrationInvite requires a one-time invite code made with `ov-server invite create`.
	RegistrationInvite Registration = "invite"
	// RegistrationClosed refuses every new account.
	RegistrationClosed Registration = "closed"
)

// ParseRegistration reads a --registration value.
func ParseRegistration(s string) (Registration, error) {
	switch r := Registration(s); r {
	case RegistrationOpen, RegistrationInvite, RegistrationClosed:
		return r, nil
	}
	return "", fmt.Errorf("registration policy %q: want open, invite or closed", s)
}

// Quotas bound what one account may hold; a zero field means no limit. They keep one account
// from filling the server's disk.
type Quotas struct {
	Apps     int
	Envs     int
	Secrets  int   // records in all environments of the account
	Bytes    int64 // sealed record bytes in all environments of the account
	Machines int
	Devices  int // active device keys
}

// DefaultQuotas returns the quotas ov-server uses unless flags say otherwise.
func DefaultQuotas() Quotas {
	return Quotas{Apps: 100, Envs: 500, Secrets: 20000, Bytes: 256 << 20, Machines: 500, Devices: 50}
}

func (q Quotas) any() bool { return q != (Quotas{}) }

// quotaError is the answer to a request that would take an account past a quota: 403 with
// code quota_exceeded and a message that names the quota and its flag.
func (s *Server) quotaError(what, flag string, limit int64) *apiError {
	s.metrics.quota.WithLabelValues(what).Inc()
	return errorf(http.StatusForbidden, api.CodeQuotaExceeded, "quota exceeded: %s: at most %d per account on this server (ov-server %s)", what, limit, flag)
}

// accountLocks serializes the quota-checked writes of one account on this instance, so that
// concurrent requests cannot race past a quota together. (Several instances sharing a database
// can each let one request through at the same moment: a quota may then be passed by at most the
// number of instances minus one.)
type accountLocks struct {
	mu sync.Mutex
	m  map[string]*accountLock
}

type accountLock struct {
	sync.Mutex
	users int
}

func (l *accountLocks) lock(id []byte) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*accountLock{}
	}
	k := string(id)
	al := l.m[k]
	if al == nil {
		al = &accountLock{}
		l.m[k] = al
	}
	al.users++
	l.mu.Unlock()
	al.Lock()
	return func() {
		al.Unlock()
		l.mu.Lock()
		if al.users--; al.users == 0 {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
}

// quotaCheck is what a quota-checked write adds to the account; it returns the error to answer
// when the account would pass a quota.
type quotaCheck struct {
	apps, envs, machines, devices int
	// secrets and bytes are the account's change in records and record bytes.
	secrets int
	bytes   int64
}

// grows reports whether c adds to something q bounds.
func (c quotaCheck) grows(q Quotas) bool {
	return q.Apps > 0 && c.apps > 0 || q.Envs > 0 && c.envs > 0 || q.Machines > 0 && c.machines > 0 ||
		q.Devices > 0 && c.devices > 0 || q.Secrets > 0 && c.secrets > 0 || q.Bytes > 0 && c.bytes > 0
}

// withQuota runs write while holding the account's quota lock, after checking that the account
// can take add. Without quotas it just runs write.
func (s *Server) withQuota(ctx context.Context, accountID []byte, add quotaCheck, write func() error) error {
	q := s.quotas
	if !q.any() || !add.grows(q) {
		// Nothing that a quota bounds grows (a commit that replaces a secret by one of the same
		// size, or that deletes): no need to count.
		return write()
	}
	unlock := s.quotaLocks.lock(accountID)
	defer unlock()
	u, err := s.st.Usage(ctx, accountID)
	if err != nil {
		return err
	}
	switch {
	case q.Apps > 0 && add.apps > 0 && u.Apps+add.apps > q.Apps:
		return s.quotaError("apps", "--quota-apps", int64(q.Apps))
	case q.Envs > 0 && add.envs > 0 && u.Envs+add.envs > q.Envs:
		return s.quotaError("environments", "--quota-envs", int64(q.Envs))
	case q.Machines > 0 && add.machines > 0 && u.Machines+add.machines > q.Machines:
		return s.quotaError("machine keys", "--quota-machines", int64(q.Machines))
	case q.Devices > 0 && add.devices > 0 && u.Devices+add.devices > q.Devices:
		return s.quotaError("active devices", "--quota-devices", int64(q.Devices))
	case q.Secrets > 0 && add.secrets > 0 && u.Secrets+add.secrets > q.Secrets:
		return s.quotaError("secrets", "--quota-secrets", int64(q.Secrets))
	case q.Bytes > 0 && add.bytes > 0 && u.Bytes+add.bytes > q.Bytes:
		return s.quotaError("bytes of sealed secrets", "--quota-bytes", q.Bytes)
	}
	return write()
}

// Invite codes: "ovi_" and 32 random bytes in base64url. The server keeps only their verifier.
const invitePrefix = "ovi_"

// NewInviteCode returns a fresh invite code and its verifier.
func NewInviteCode() (code string, verifier []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("make invite code: %w", err)
	}
	code = invitePrefix + base64.RawURLEncoding.EncodeToString(b)
	clear(b)
	return code, InviteVerifier(code), nil
}

// InviteVerifier is what the store keeps of an invite code: a SHA-256 under a domain label. The
// code holds 256 random bits, so a fast hash is enough.
func InviteVerifier(code string) []byte {
	h := sha256.New()
	h.Write([]byte("ov-server/v1/invite\x00"))
	h.Write([]byte(strings.TrimSpace(code)))
	return h.Sum(nil)
}

// checkInviteCode checks the shape of a code sent with a registration.
func checkInviteCode(code string) error {
	rest, ok := strings.CutPrefix(code, invitePrefix)
	if !ok {
		return errorf(http.StatusForbidden, api.CodeInviteInvalid, "the invite code is not an ov-server invite (ovi_...)")
	}
	if b, err := base64.RawURLEncoding.DecodeString(rest); err != nil || len(b) != 32 {
		return errorf(http.StatusForbidden, api.CodeInviteInvalid, "the invite code is malformed")
	}
	return nil
}

// registrationErrors maps the policy to the answer for a request without a usable invite.
func (s *Server) checkRegistration(invite string) error {
	switch s.registration {
	case RegistrationClosed:
		return errorf(http.StatusForbidden, api.CodeRegistrationClosed, "registration is closed on this server")
	case RegistrationInvite:
		if invite == "" {
			return errorf(http.StatusForbidden, api.CodeInviteRequired, "registration on this server needs an invite code")
		}
		return checkInviteCode(invite)
	}
	return nil
}

// recordsGrowth is how a commit changes the account's records and record bytes (for the
// secrets and bytes quotas): puts replace stored records of the same blind id, deletes remove.
func recordsGrowth(v *store.EnvView, put []store.Record, del [][]byte, rotate bool) quotaCheck {
	stored := make(map[string]int, len(v.Records))
	for _, r := range v.Records {
		stored[string(r.Blind)] = r.Size
	}
	var q quotaCheck
	if rotate {
		for _, sz := range stored {
			q.secrets--
			q.bytes -= int64(sz)
		}
		clear(stored)
	}
	for _, b := range del {
		if sz, ok := stored[string(b)]; ok {
			q.secrets--
			q.bytes -= int64(sz)
			delete(stored, string(b))
		}
	}
	for _, p := range put {
		if sz, ok := stored[string(p.Blind)]; ok {
			q.bytes -= int64(sz)
		} else {
			q.secrets++
		}
		q.bytes += int64(len(p.Data))
	}
	return q
}
