// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// Machine-key errors.
var (
	// ErrMachineUnknown means the server does not recognize the machine key.
	ErrMachineUnknown = errors.New("machine key not recognized by the server (revoked, corrupted, or issued by another server)")
	// ErrOutOfScope means the (app, env) asked for is not in the machine key's signed grant.
	ErrOutOfScope = errors.New("not in the machine key's grant")
	// ErrNoCache means the server was unreachable and nothing usable was cached.
	ErrNoCache = errors.New("no cached copy")
	// ErrCacheTooOld means the cached copy is older than the allowed age.
	ErrCacheTooOld = errors.New("cached copy too old")
	// ErrCacheFuture means the cached copy's fetch time is in the future (a clock set back, or a
	// forged time): its age cannot be known, so it is not used.
	ErrCacheFuture = errors.New("cached copy dated in the future")
)

// ScopeName is an (app, env) by name.
type ScopeName struct{ App, Env string }

func (s ScopeName) String() string { return s.App + "/" + s.Env }

// MachineRequest describes a machine key to issue.
type MachineRequest struct {
	Scopes   []ScopeName // empty: account-wide
	NotAfter time.Time   // zero: no expiry
	Label    string
}

// IssuedMachine is a registered machine key. The caller writes Key out and wipes it.
type IssuedMachine struct {
	Key    *vault.MachineKey
	ID     string
	Grant  *envelope.Grant
	Scopes []ScopeName
}

// clockSkew backdates grants so that a host whose clock runs a little behind accepts a fresh one.
const clockSkew = 5 * time.Minute

// IssueMachine draws a machine key, wraps each scope's environment key to it (or, account-wide, the
// account key), signs its v2 grant (with the revocation list's seq and, account-wide, the signed
// rollback floor of every existing env), adds it to the signed allowed set of each scope's current
// epoch, computes its pin and registers it. Every scope must exist.
func (v *Vault) IssueMachine(ctx context.Context, req MachineRequest) (*IssuedMachine, error) {
	rl, err := v.Revocations(ctx, 0)
	if err != nil {
		return nil, err
	}
	var revSeq uint64
	if rl != nil {
		revSeq = rl.Seq
	}
	mk := vault.NewMachineKey()
	ok := false
	defer func() {
		if !ok {
			mk.Wipe()
		}
	}()
	id := mk.ID()
	pub := mk.PublicKey()
	g := &envelope.Grant{Version: envelope.GrantV2, AccountID: v.Account.ID, MachineID: id[:], MachinePub: pub,
		NotBefore: uint64(v.now().Add(-clockSkew).Unix()), RevocationsSeq: revSeq}
	if !req.NotAfter.IsZero() {
		g.NotAfter = uint64(req.NotAfter.Unix())
	}
	nm := &api.NewMachine{MachineID: hex.EncodeToString(id[:]), Verifier: nil, XPub: pub, Label: req.Label}
	ver := mk.Verifier()
	nm.Verifier = ver[:]
	var scopes []ScopeName
	var envs []*Env // scoped: the current state of each scope, for its allowed set
	defer func() {
		for _, e := range envs {
			e.Wipe()
		}
	}()
	for _, sc := range req.Scopes {
		appName, envName, err := normalize(sc.App, sc.Env)
		if err != nil {
			return nil, err
		}
		app, env, err := v.find(ctx, appName, envName)
		if err != nil {
			return nil, err
		}
		cur, err := v.read(ctx, app, env)
		if err != nil {
			return nil, err
		}
		envs = append(envs, cur)
		w, err := vault.WrapEnvKeyToMachine(cur.ek, cur.scope, id[:], pub)
		if err != nil {
			return nil, err
		}
		g.Scopes = append(g.Scopes, envelope.GrantScope{AppID: cur.scope.AppID, AppName: appName, EnvID: cur.scope.EnvID, EnvName: envName, SeqMin: cur.Seq})
		nm.Wraps = append(nm.Wraps, api.MachineWrap{AppID: app.AppID, EnvID: env.EnvID, Epoch: cur.Epoch, Wrap: w})
		scopes = append(scopes, ScopeName{appName, envName})
	}
	if len(req.Scopes) == 0 {
		g.Flags = envelope.GrantAccountWide
		floors, err := v.accountFloors(ctx)
		if err != nil {
			return nil, err
		}
		g.Scopes = floors
		w, err := vault.WrapAccountKeyToMachine(v.Account.AK, v.Account.ID, v.Account.AKVersion, id[:], pub)
		if err != nil {
			return nil, err
		}
		nm.AccountWrap, nm.AKVersion = w, v.Account.AKVersion
	}
	raw, sig, err := v.Account.Sign.SignGrant(g)
	if err != nil {
		return nil, err
	}
	nm.Grant, nm.GrantSig = raw, sig
	// The allowed sets first: a set naming a key that failed to register gives nothing to anyone,
	// while a registered key missing from its set could not read.
	for _, cur := range envs {
		if err := v.allowInto(ctx, cur, rl, id[:], raw); err != nil {
			return nil, err
		}
	}
	mac, err := mk.PinMAC(v.Account.ID, v.Account.SignPub)
	if err != nil {
		return nil, err
	}
	nm.Pin = api.MachinePin{SignPub: bytes.Clone(v.Account.SignPub), MAC: mac[:]}
	if !req.NotAfter.IsZero() {
		t := req.NotAfter.UTC()
		nm.NotAfter = &t
	}
	if err := v.Client.CreateMachine(ctx, nm); err != nil {
		return nil, fmt.Errorf("register machine key: %w", err)
	}
	ok = true
	return &IssuedMachine{Key: mk, ID: nm.MachineID, Grant: g, Scopes: scopes}, nil
}

// allowInto re-signs the allowed set of cur's epoch with machineID added (under grantRaw), leaving
// out machines on the revocation list, and stores it.
func (v *Vault) allowInto(ctx context.Context, cur *Env, rl *envelope.Revocations, machineID, grantRaw []byte) error {
	old, err := v.currentAccess(cur)
	if err != nil {
		return err
	}
	var revSeq, version uint64 = 0, 1
	if rl != nil {
		revSeq = rl.Seq
	}
	entries := []envelope.AccessEntry{{MachineID: bytes.Clone(machineID), GrantHash: vault.GrantHash(grantRaw)}}
	if old != nil {
		if old.RevocationsSeq > revSeq {
			return tampered("verify the revocation list", fmt.Errorf("seq %d is below %d, named by the allowed set of %s/%s: %w", revSeq, old.RevocationsSeq, cur.AppName, cur.EnvName, vault.ErrRollback))
		}
		version = old.Version + 1
		for _, e := range old.Entries {
			if !rl.Revoked(e.MachineID) && !bytes.Equal(e.MachineID, machineID) {
				entries = append(entries, e)
			}
		}
	}
	slices.SortFunc(entries, func(a, b envelope.AccessEntry) int { return bytes.Compare(a.MachineID, b.MachineID) })
	s, err := v.signAccess(cur.scope, cur.ek, version, revSeq, entries)
	if err != nil {
		return err
	}
	if err := v.Client.PutEnvAccess(ctx, cur.EnvID, cur.Epoch, s); err != nil {
		return fmt.Errorf("store the allowed set of %s/%s: %w", cur.AppName, cur.EnvName, err)
	}
	return nil
}

// accountFloors reads (and so verifies) every env of the account and returns their names, ids and
// manifest seqs: the signed rollback floors of an account-wide grant.
func (v *Vault) accountFloors(ctx context.Context) ([]envelope.GrantScope, error) {
	list, err := v.Client.Apps(ctx)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	var out []envelope.GrantScope
	for i := range list.Apps {
		a := &list.Apps[i]
		for j := range a.Envs {
			cur, err := v.read(ctx, a, &a.Envs[j])
			if err != nil {
				return nil, err
			}
			out = append(out, envelope.GrantScope{AppID: cur.scope.AppID, AppName: cur.AppName, EnvID: cur.scope.EnvID, EnvName: cur.EnvName, SeqMin: cur.Seq})
			cur.Wipe()
		}
	}
	return out, nil
}

// MachineInfo is a registered machine with its verified grant.
type MachineInfo struct {
	api.Machine
	Grant   *envelope.Grant // nil when the grant does not verify under the account's signing key
	Expired bool            // the grant verifies but is outside its validity window
	// Misfiled: the grant verifies but names another machine id than the one it is listed under.
	Misfiled bool
}

// Machines lists the account's machine keys, verifying each grant with the pinned signing key.
func (v *Vault) Machines(ctx context.Context) ([]MachineInfo, error) {
	list, err := v.Client.Machines(ctx)
	if err != nil {
		return nil, fmt.Errorf("list machine keys: %w", err)
	}
	out := make([]MachineInfo, 0, len(list.Machines))
	for _, m := range list.Machines {
		mi := MachineInfo{Machine: m}
		g, err := vault.VerifyGrant(v.Account.SignPub, m.Grant, m.GrantSig, v.now())
		switch {
		case err == nil:
			mi.Grant = g
		case errors.Is(err, vault.ErrGrantExpired), errors.Is(err, vault.ErrGrantNotYetValid):
			// The signature held (it is checked first); only the validity window did not.
			if g, perr := envelope.ParseGrant(m.Grant); perr == nil {
				mi.Grant, mi.Expired = g, true
			}
		}
		// The grant names its machine inside the signature: a grant listed under another id (a
		// revoked key relisted, or a grant moved to another machine) is not that machine's.
		if mi.Grant != nil && hex.EncodeToString(mi.Grant.MachineID) != m.MachineID {
			mi.Grant, mi.Expired, mi.Misfiled = nil, false, true
		}
		out = append(out, mi)
	}
	return out, nil
}

// MachineReader reads environments with a machine key: no password, no agent.
type MachineReader struct {
	Client    *api.Client // nil with Offline
	Key       *vault.MachineKey
	HighWater *HighWater // the rollback floors of this machine
	Cache     *Cache     // nil: no cache
	Offline   bool       // use only the cache
	MaxAge    time.Duration
	Now       func() time.Time
	// Memo, when set, keeps what Read verified (see [Memo]).
	Memo *Memo

	savedMu sync.Mutex
	saved   map[string]uint64 // seq last written to the cache per (app, env), by this process
}

// ReadInfo says where a read came from.
type ReadInfo struct {
	FromCache   bool
	FetchedAt   time.Time // when the data was fetched from the server
	Unreachable error     // why the server was not used, when FromCache
	CacheErr    error     // a failure to update the cache (the read itself succeeded)
}

func (m *MachineReader) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// trusted is what a verified MachineSelf yields.
type trusted struct {
	accountID []byte
	signPub   ed25519.PublicKey
	grant     *envelope.Grant
	grantRaw  []byte
	ak        *vault.AccountKey // account-wide machines only
	wrapTag   []byte            // account-wide machines: the account key wrap and its version
}

func (t *trusted) wipe() {
	if t != nil && t.ak != nil {
		t.ak.Wipe()
	}
}

// verifySelf authenticates the signing key through the pin (a MAC under a key only the machine key
// derives), then the grant under that key, then (account-wide) unwraps the account key. cached
// says that self was read back from the offline cache after its MAC verified: the grant's
// signature is then not verified again (crypto.md §2.9).
func (m *MachineReader) verifySelf(self *api.MachineSelf, cached bool) (*trusted, error) {
	id := m.Key.ID()
	if self.MachineID != hex.EncodeToString(id[:]) {
		return nil, tampered("verify machine", errors.New("server answered for another machine"))
	}
	aid, err := DecodeID("account id", self.AccountID)
	if err != nil {
		return nil, tampered("verify machine", err)
	}
	if err := m.Key.VerifyPin(aid, self.Pin.SignPub, self.Pin.MAC); err != nil {
		return nil, tampered("verify machine", err)
	}
	verifyGrant := m.Key.VerifyGrant
	if cached {
		verifyGrant = m.Key.VerifyCachedGrant
	}
	g, err := verifyGrant(self.Pin.SignPub, self.Grant, self.GrantSig, aid, m.now())
	if err != nil {
		if errors.Is(err, vault.ErrGrantExpired) || errors.Is(err, vault.ErrGrantNotYetValid) {
			return nil, fmt.Errorf("use machine key: %w", err)
		}
		return nil, tampered("verify machine grant", err)
	}
	t := &trusted{accountID: aid, signPub: ed25519.PublicKey(bytes.Clone(self.Pin.SignPub)), grant: g, grantRaw: self.Grant}
	if g.AccountWide() {
		if len(self.AccountWrap) == 0 {
			return nil, tampered("verify machine", errors.New("an account-wide grant without its account key wrap"))
		}
		ak, err := m.Key.UnwrapAccountKey(self.AccountWrap, aid, self.AKVersion)
		if err != nil {
			return nil, tampered("verify machine", err)
		}
		t.ak = ak
		t.wrapTag = binary.BigEndian.AppendUint32(bytes.Clone(self.AccountWrap), self.AKVersion)
	}
	return t, nil
}

// GrantScopes lists a grant's scopes as app/env names (none for an account-wide grant, whose
// entries are rollback floors, not scopes).
func GrantScopes(g *envelope.Grant) []string {
	var s []string
	if g.AccountWide() {
		return s
	}
	for _, sc := range g.Scopes {
		s = append(s, sc.AppName+"/"+sc.EnvName)
	}
	return s
}

// scopeOf resolves (app, env) in the grant; the request is refused before anything else is fetched.
func (t *trusted) scopeOf(appName, envName string) (envelope.GrantScope, error) {
	if t.ak != nil {
		return envelope.GrantScope{AppName: appName, EnvName: envName}, nil
	}
	sc, ok := t.grant.Scope(appName, envName)
	if !ok {
		return sc, fmt.Errorf("read %s/%s: %w, which is for %s only", appName, envName, ErrOutOfScope, strings.Join(GrantScopes(t.grant), ", "))
	}
	return sc, nil
}

// Read returns the verified secrets of appName/envName. When the server cannot be reached (or with
// Offline) it uses the newest verified copy from the cache, no older than MaxAge, checked again as
// a server answer is except for its signatures, which the cache's MAC vouches for (crypto.md §2.9).
func (m *MachineReader) Read(ctx context.Context, appName, envName string) (*Env, *ReadInfo, error) {
	appName, envName, err := normalize(appName, envName)
	if err != nil {
		return nil, nil, err
	}
	if m.Offline {
		return m.readCache(appName, envName, errors.New("--offline"))
	}
	e, info, err := m.readOnline(ctx, appName, envName)
	var ue *api.UnreachableError
	if errors.As(err, &ue) && m.Cache != nil {
		return m.readCache(appName, envName, err)
	}
	return e, info, err
}

func (m *MachineReader) readOnline(ctx context.Context, appName, envName string) (*Env, *ReadInfo, error) {
	fetched := m.now()
	self, err := m.Client.MachineSelf(ctx)
	if err != nil {
		if errors.Is(err, api.ErrUnauthorized) {
			if m.Cache != nil {
				// A revoked key must not go on decrypting its cached copy offline.
				m.Cache.forget(m.Key)
			}
			return nil, nil, fmt.Errorf("use machine key: %w", ErrMachineUnknown)
		}
		return nil, nil, fmt.Errorf("fetch machine grant: %w", err)
	}
	t, err := m.verifySelf(self, false)
	if err != nil {
		return nil, nil, err
	}
	defer t.wipe()
	sc, err := t.scopeOf(appName, envName)
	if err != nil {
		return nil, nil, err
	}
	appID, envID := hex.EncodeToString(sc.AppID), hex.EncodeToString(sc.EnvID)
	if t.ak != nil {
		list, err := m.Client.Apps(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list apps: %w", err)
		}
		appID, envID, err = findIDs(published(list, func(id string) bool {
			return m.HighWater != nil && m.HighWater.Get(id) > 0
		}), appName, envName)
		if err != nil {
			return nil, nil, err
		}
		if sc, err = t.accountFloor(appName, envName, appID, envID); err != nil {
			return nil, nil, err
		}
	}
	st, err := m.Client.Env(ctx, envID)
	if err != nil {
		if errors.Is(err, api.ErrForbidden) || errors.Is(err, api.ErrNotFound) {
			return nil, nil, fmt.Errorf("fetch %s/%s: %w (the server no longer holds this machine's wrap)", appName, envName, err)
		}
		return nil, nil, fmt.Errorf("fetch %s/%s: %w", appName, envName, err)
	}
	e, err := m.open(t, sc, appName, envName, appID, envID, st, false)
	if err != nil {
		return nil, nil, err
	}
	info := &ReadInfo{FetchedAt: fetched}
	if m.Cache != nil && m.needsSave(appName, envName, st.Seq) {
		info.CacheErr = m.Cache.save(m.Key, appName, envName, &cacheEntry{FetchedAt: fetched, Self: *self, AppID: appID, EnvID: envID, Env: *st})
	}
	return e, info, nil
}

// accountFloor returns, for an account-wide machine, the signed floor its v2 grant gives
// appName/envName (the env's manifest seq when the key was issued), and refuses a server that maps
// those names to other ids than the grant signed. An env created after the key has no floor.
func (t *trusted) accountFloor(appName, envName, appID, envID string) (envelope.GrantScope, error) {
	sc := envelope.GrantScope{AppName: appName, EnvName: envName}
	fl, ok := t.grant.Floor(appName, envName)
	if !ok {
		return sc, nil
	}
	if hex.EncodeToString(fl.AppID) != appID || hex.EncodeToString(fl.EnvID) != envID {
		return sc, tampered("verify "+appName+"/"+envName, errors.New("the server maps the name to another environment than the machine key's grant"))
	}
	return fl, nil
}

func (m *MachineReader) open(t *trusted, sc envelope.GrantScope, appName, envName, appID, envID string, st *api.EnvState, cached bool) (*Env, error) {
	chk := checker{accountID: t.accountID, signPub: t.signPub, hw: m.HighWater, floor: sc.SeqMin, wrapTag: t.wrapTag, cached: cached}
	if t.ak == nil {
		chk.machine, chk.grantRaw = m.Key, t.grantRaw
	}
	return chk.openMemo(m.Memo, appName, envName, appID, envID, st, func(scope vault.Scope) (*vault.EnvKey, error) {
		if t.ak != nil {
			return t.ak.UnwrapEnvKey(st.WrappedEK, scope)
		}
		return m.Key.UnwrapEnvKey(st.MachineWrap, scope)
	})
}

func (m *MachineReader) readCache(appName, envName string, why error) (*Env, *ReadInfo, error) {
	if m.Cache == nil {
		return nil, nil, fmt.Errorf("read %s/%s: %w (%v)", appName, envName, ErrNoCache, why)
	}
	ce, err := m.Cache.load(m.Key, appName, envName)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s/%s: server unreachable (%v), and %w", appName, envName, why, err)
	}
	age := m.now().Sub(ce.FetchedAt)
	if age < -clockSkew {
		return nil, nil, fmt.Errorf("read %s/%s: server unreachable (%v), and the cached copy claims to be fetched at %s, in the future: %w",
			appName, envName, why, ce.FetchedAt.UTC().Format(time.RFC3339), ErrCacheFuture)
	}
	age = max(age, 0)
	if m.MaxAge > 0 && age > m.MaxAge {
		return nil, nil, fmt.Errorf("read %s/%s: server unreachable (%v), and the cached copy is %s old (more than --max-age %s): %w",
			appName, envName, why, age.Round(time.Second), m.MaxAge, ErrCacheTooOld)
	}
	t, err := m.verifySelf(&ce.Self, true)
	if err != nil {
		return nil, nil, err
	}
	defer t.wipe()
	sc, err := t.scopeOf(appName, envName)
	if err != nil {
		return nil, nil, err
	}
	if t.ak == nil && (ce.AppID != hex.EncodeToString(sc.AppID) || ce.EnvID != hex.EncodeToString(sc.EnvID)) {
		return nil, nil, tampered("verify cache", errors.New("cached ids differ from the grant's"))
	}
	if t.ak != nil {
		if sc, err = t.accountFloor(appName, envName, ce.AppID, ce.EnvID); err != nil {
			return nil, nil, err
		}
	}
	e, err := m.open(t, sc, appName, envName, ce.AppID, ce.EnvID, &ce.Env, true)
	if err != nil {
		return nil, nil, err
	}
	return e, &ReadInfo{FromCache: true, FetchedAt: ce.FetchedAt, Unreachable: why}, nil
}

func findIDs(list *api.AppList, appName, envName string) (string, string, error) {
	for _, a := range list.Apps {
		if a.Name != appName {
			continue
		}
		for _, e := range a.Envs {
			if e.Name == envName {
				return a.AppID, e.EnvID, nil
			}
		}
		return "", "", fmt.Errorf("find %s/%s: %w", appName, envName, ErrEnvNotFound)
	}
	return "", "", fmt.Errorf("find %s/%s: %w", appName, envName, ErrAppNotFound)
}

// needsSave reports whether (app, env) at seq is not yet in the cache from this process: a long-running
// reader (the agent) writes the cache when the data changes, not at every request.
func (m *MachineReader) needsSave(appName, envName string, seq uint64) bool {
	m.savedMu.Lock()
	defer m.savedMu.Unlock()
	if m.saved == nil {
		m.saved = map[string]uint64{}
	}
	k := appName + "\x00" + envName
	if s, ok := m.saved[k]; ok && s == seq {
		return false
	}
	m.saved[k] = seq
	return true
}
