// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/names"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// Errors of this package.
var (
	// ErrAppNotFound and ErrEnvNotFound mean the (app, env) does not exist on the server.
	ErrAppNotFound = errors.New("app not found")
	ErrEnvNotFound = errors.New("env not found")
	// ErrTampered means the server answered something that does not verify: the answer is refused.
	ErrTampered = errors.New("server answer failed verification")
	// ErrConflict means another writer kept winning the compare-and-swap.
	ErrConflict = errors.New("environment changed while writing")
)

// Vault reads and writes the environments of one unlocked account.
type Vault struct {
	Client  *api.Client
	Account *Account
	// HighWater keeps the rollback floor per environment; nil keeps none.
	HighWater *HighWater
	// Now stamps manifests (default time.Now).
	Now func() time.Time
	// MaxAttempts bounds compare-and-swap retries (default 5).
	MaxAttempts int
	// Memo, when set, keeps what Read verified (see [Memo]): for a long-running reader (the agent)
	// whose Read results are never written from. Writes do not use it.
	Memo *Memo
}

// Secret is one decrypted secret. Value is the caller's to wipe.
type Secret struct {
	Name    string
	Version uint64
	Value   []byte
}

// Env is a verified, decrypted environment.
type Env struct {
	AppID, EnvID     string
	AppName, EnvName string
	Epoch            uint32
	Seq              uint64
	UpdatedAt        time.Time
	Secrets          []Secret // sorted by name

	scope vault.Scope
	ek    *vault.EnvKey
	// entries and records of the current manifest, by blind id, for the write path.
	entries map[[envelope.BlindLen]byte]envelope.ManifestEntry
	records map[[envelope.BlindLen]byte][]byte
	// the signed allowed set of this epoch as served (verified by who uses it)
	access, accessSig []byte
	// manifestRaw is the verified current manifest as served: the next one chains to its hash.
	manifestRaw []byte
}

// Lookup returns the secret called name.
func (e *Env) Lookup(name string) (Secret, bool) {
	i := sort.Search(len(e.Secrets), func(i int) bool { return e.Secrets[i].Name >= name })
	if i < len(e.Secrets) && e.Secrets[i].Name == name {
		return e.Secrets[i], true
	}
	return Secret{}, false
}

// Wipe clears the values and the environment key.
func (e *Env) Wipe() {
	if e == nil {
		return
	}
	for i := range e.Secrets {
		clear(e.Secrets[i].Value)
	}
	if e.ek != nil {
		e.ek.Wipe()
	}
}

func (v *Vault) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Published returns list without the envs that were never committed (seq 0) and without the apps
// left with no env. An import or a first `secret set` creates its env (and app) in requests of their
// own before the commit that fills it; when that commit fails, the empty env stays on the server.
// Every reader treats such an env as absent, so that a failed write leaves nothing behind that a
// user can see, and [Vault.Write] reuses it. list is changed in place and returned.
func Published(list *api.AppList) *api.AppList { return published(list, nil) }

// published is Published, keeping also the envs for which seen is true: a server that lists an env
// this client has seen committed with seq 0 is rolling it back, and the read must say so rather
// than report it missing.
func published(list *api.AppList, seen func(envID string) bool) *api.AppList {
	apps := list.Apps[:0]
	for _, a := range list.Apps {
		envs := a.Envs[:0]
		for _, e := range a.Envs {
			if e.Seq > 0 || seen != nil && seen(e.EnvID) {
				envs = append(envs, e)
			}
		}
		if len(envs) > 0 {
			a.Envs = envs
			apps = append(apps, a)
		}
	}
	list.Apps = apps
	return list
}

// find returns the app and env called appName/envName, leaving out envs that were never
// committed (see [Published]).
func (v *Vault) find(ctx context.Context, appName, envName string) (*api.App, *api.Env, error) {
	list, err := v.Client.Apps(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list apps: %w", err)
	}
	return findIn(published(list, v.seen), appName, envName)
}

// seen reports whether this client's rollback floor has a committed seq for envID.
func (v *Vault) seen(envID string) bool {
	return v.HighWater != nil && v.HighWater.Get(envID) > 0
}

// findForWrite is find, with the envs that were never committed: a write fills them.
func (v *Vault) findForWrite(ctx context.Context, appName, envName string) (*api.App, *api.Env, error) {
	list, err := v.Client.Apps(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list apps: %w", err)
	}
	return findIn(list, appName, envName)
}

func findIn(list *api.AppList, appName, envName string) (*api.App, *api.Env, error) {
	for i := range list.Apps {
		a := &list.Apps[i]
		if a.Name != appName {
			continue
		}
		for j := range a.Envs {
			if a.Envs[j].Name == envName {
				return a, &a.Envs[j], nil
			}
		}
		return a, nil, fmt.Errorf("find %s/%s: %w", appName, envName, ErrEnvNotFound)
	}
	return nil, nil, fmt.Errorf("find %s/%s: %w", appName, envName, ErrAppNotFound)
}

// normalize checks and NFC-normalizes an app and env name.
func normalize(appName, envName string) (string, string, error) {
	a, err := names.NormalizeScope("app", appName)
	if err != nil {
		return "", "", fmt.Errorf("check app name: %w", err)
	}
	e, err := names.NormalizeScope("env", envName)
	if err != nil {
		return "", "", fmt.Errorf("check env name: %w", err)
	}
	return a, e, nil
}

// Read fetches, verifies and decrypts every secret of appName/envName. Errors wrap ErrAppNotFound,
// ErrEnvNotFound, ErrTampered (with the vault error: rollback, bad signature, mismatch), or api errors.
func (v *Vault) Read(ctx context.Context, appName, envName string) (*Env, error) {
	appName, envName, err := normalize(appName, envName)
	if err != nil {
		return nil, err
	}
	app, env, err := v.find(ctx, appName, envName)
	if err != nil {
		return nil, err
	}
	if v.Memo != nil {
		st, err := v.Client.Env(ctx, env.EnvID)
		if err != nil {
			return nil, fmt.Errorf("fetch %s/%s: %w", app.Name, env.Name, err)
		}
		return v.checker().openMemo(v.Memo, app.Name, env.Name, app.AppID, env.EnvID, st, v.ekFor(st))
	}
	return v.read(ctx, app, env)
}

func (v *Vault) read(ctx context.Context, app *api.App, env *api.Env) (*Env, error) {
	st, err := v.Client.Env(ctx, env.EnvID)
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%s: %w", app.Name, env.Name, err)
	}
	return v.open(app.Name, env.Name, app.AppID, env.EnvID, st)
}

func tampered(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%s: %w", what, ErrTampered)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrTampered, err)
}

// open verifies an EnvState for the (app, env) the caller asked for by name and decrypts it, with the
// environment key unwrapped under the account key.
func (v *Vault) open(appName, envName, appID, envID string, st *api.EnvState) (*Env, error) {
	return v.checker().open(appName, envName, appID, envID, st, v.ekFor(st))
}

func (v *Vault) checker() checker {
	return checker{accountID: v.Account.ID, signPub: v.Account.SignPub, hw: v.HighWater}
}

func (v *Vault) ekFor(st *api.EnvState) ekSource {
	return func(scope vault.Scope) (*vault.EnvKey, error) { return v.Account.AK.UnwrapEnvKey(st.WrappedEK, scope) }
}

// ekSource returns the environment key for a scope (see checker.open).
type ekSource func(vault.Scope) (*vault.EnvKey, error)

// checker holds what a reader trusts before it looks at a server answer: the account, its pinned
// signing key and the rollback floors.
type checker struct {
	accountID []byte
	signPub   ed25519.PublicKey
	hw        *HighWater
	floor     uint64 // a further floor, such as a machine grant's seq_min
	// machine and grantRaw, for a scoped machine: the epoch's signed allowed set must list machine
	// under exactly this grant, and commit to the environment key it unwraps.
	machine  *vault.MachineKey
	grantRaw []byte
	// wrapTag, for an account-wide machine, identifies the account key wrap it unwrapped (for Memo).
	wrapTag []byte
	// cached: the answer was read back from a machine's offline cache after its MAC verified;
	// its signatures are not verified again, everything else is (crypto.md §2.9).
	cached bool
}

// open verifies st (ids, environment key, signed manifest, rollback floor, ek_id, every record) and
// decrypts it. ekFor returns the environment key for the scope (ids from the answer, names from the
// request); its wrap binds them, so a key for another environment does not open.
func (c checker) open(appName, envName, appID, envID string, st *api.EnvState, ekFor ekSource) (*Env, error) {
	what := "verify " + appName + "/" + envName
	if st.AppID != appID || st.EnvID != envID {
		return nil, tampered(what, errors.New("server answered for another environment"))
	}
	aid, err := DecodeID("app id", appID)
	if err != nil {
		return nil, tampered(what, err)
	}
	eid, err := DecodeID("env id", envID)
	if err != nil {
		return nil, tampered(what, err)
	}
	scope := vault.Scope{AccountID: c.accountID, AppID: aid, EnvID: eid, Epoch: st.Epoch, AppName: appName, EnvName: envName}
	var access *envelope.EnvAccess
	if c.machine != nil {
		// Before any key is unwrapped: is this machine allowed to read this epoch at all?
		if access, err = verifyAccess(&c, st, scope); err != nil {
			if errors.Is(err, vault.ErrNotAllowed) {
				return nil, fmt.Errorf("read %s/%s: %w", appName, envName, err)
			}
			return nil, tampered(what, err)
		}
		if err := c.machine.CheckAllowed(access, c.grantRaw); err != nil {
			return nil, fmt.Errorf("read %s/%s: %w: it was revoked, its grant expired, or it was not re-granted after a rotation", appName, envName, err)
		}
	}
	ek, err := ekFor(scope)
	if err != nil {
		return nil, tampered(what, err)
	}
	if access != nil {
		id, err := vault.EKIDOf(ek, scope)
		if err != nil || !bytes.Equal(id, access.EKID) {
			ek.Wipe()
			return nil, tampered(what, fmt.Errorf("the allowed set commits to another environment key: %w", vault.ErrEKMismatch))
		}
	}
	e := &Env{
		AppID: appID, EnvID: envID, AppName: appName, EnvName: envName,
		Epoch: st.Epoch, UpdatedAt: st.UpdatedAt, scope: scope, ek: ek,
		entries:   map[[envelope.BlindLen]byte]envelope.ManifestEntry{},
		records:   map[[envelope.BlindLen]byte][]byte{},
		access:    st.Access,
		accessSig: st.AccessSig,
	}
	hw := max(c.hw.Get(envID), c.floor)
	if st.Seq == 0 && len(st.Manifest) == 0 {
		if hw > 0 {
			e.Wipe()
			return nil, tampered(what, fmt.Errorf("server shows no manifest, but seq %d was seen before: %w", hw, vault.ErrRollback))
		}
		if len(st.Records) > 0 {
			e.Wipe()
			return nil, tampered(what, errors.New("records without a manifest"))
		}
		return e, nil
	}
	m, err := vault.VerifyManifest(st.Manifest, st.ManifestSig, vault.ManifestCheck{
		PublicKey: c.signPub, AccountID: c.accountID, AppID: aid, EnvID: eid, HighWater: hw, Cached: c.cached,
	})
	if err != nil {
		e.Wipe()
		return nil, tampered(what, err)
	}
	if m.Seq != st.Seq || m.Epoch != st.Epoch {
		e.Wipe()
		return nil, tampered(what, errors.New("manifest seq or epoch differs from the server's listing"))
	}
	r, err := vault.NewEnvReader(m, ek)
	if err != nil {
		e.Wipe()
		return nil, tampered(what, err)
	}
	defer r.Wipe()
	for _, rec := range st.Records {
		var b [envelope.BlindLen]byte
		if len(rec.Blind) != envelope.BlindLen {
			e.Wipe()
			return nil, tampered(what, errors.New("record with a malformed blind id"))
		}
		copy(b[:], rec.Blind)
		if _, dup := e.records[b]; dup {
			e.Wipe()
			return nil, tampered(what, errors.New("duplicate record"))
		}
		e.records[b] = rec.Record
	}
	if len(e.records) != len(m.Entries) {
		e.Wipe()
		return nil, tampered(what, fmt.Errorf("server returned %d records for %d manifest entries", len(e.records), len(m.Entries)))
	}
	for _, ent := range m.Entries {
		var b [envelope.BlindLen]byte
		copy(b[:], ent.Blind)
		rec, ok := e.records[b]
		if !ok {
			e.Wipe()
			return nil, tampered(what, errors.New("a record of the manifest is missing"))
		}
		name, value, err := r.OpenEntry(ent, rec)
		if err != nil {
			e.Wipe()
			return nil, tampered(what, err)
		}
		e.entries[b] = ent
		e.Secrets = append(e.Secrets, Secret{Name: name, Version: ent.Version, Value: value})
	}
	sort.Slice(e.Secrets, func(i, j int) bool { return e.Secrets[i].Name < e.Secrets[j].Name })
	e.Seq = m.Seq
	e.manifestRaw = st.Manifest
	if err := c.hw.Raise(envID, m.Seq); err != nil {
		e.Wipe()
		return nil, err
	}
	return e, nil
}

// Change is what a write does: values to set (new versions) and names to delete.
type Change struct {
	Set    []Secret // Name and Value; Version is assigned
	Delete []string
}

// Empty reports whether the change does nothing.
func (c *Change) Empty() bool { return c == nil || (len(c.Set) == 0 && len(c.Delete) == 0) }

// Plan decides a change from the current environment; it is called again after a conflict.
type Plan func(cur *Env) (*Change, error)

// WriteResult reports a write.
type WriteResult struct {
	Change   *Change // the change that was committed (nil if nothing changed)
	Seq      uint64
	Attempts int
	Created  bool // the app or env was created
}

// Write reads appName/envName (creating them when create is set), asks plan for a change, and commits
// it with a compare-and-swap; when another writer won in between, it reads again and asks plan again.
func (v *Vault) Write(ctx context.Context, appName, envName string, create bool, plan Plan) (*WriteResult, error) {
	appName, envName, err := normalize(appName, envName)
	if err != nil {
		return nil, err
	}
	res := &WriteResult{}
	max := v.MaxAttempts
	if max <= 0 {
		max = 5
	}
	for res.Attempts < max {
		res.Attempts++
		app, env, err := v.findForWrite(ctx, appName, envName)
		if err == nil && env.Seq == 0 && !create {
			app, env, err = nil, nil, fmt.Errorf("find %s/%s: %w", appName, envName, ErrEnvNotFound)
		}
		if err != nil && create && (errors.Is(err, ErrAppNotFound) || errors.Is(err, ErrEnvNotFound)) {
			app, env, err = v.create(ctx, appName, envName, app)
			if errors.Is(err, api.ErrConflict) {
				continue // someone created it first: read theirs
			}
			if err == nil {
				res.Created = true
			}
		}
		if err != nil {
			return nil, err
		}
		cur, err := v.read(ctx, app, env)
		if err != nil {
			return nil, err
		}
		ch, err := plan(cur)
		if err != nil {
			cur.Wipe()
			return nil, err
		}
		if ch.Empty() {
			res.Seq = cur.Seq
			cur.Wipe()
			return res, nil
		}
		seq, err := v.commit(ctx, cur, ch)
		cur.Wipe()
		if errors.Is(err, api.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Change, res.Seq = ch, seq
		return res, nil
	}
	return nil, fmt.Errorf("write %s/%s: gave up after %d attempts: %w", appName, envName, res.Attempts, ErrConflict)
}

// create makes the app (unless it exists) and the env with a fresh environment key.
func (v *Vault) create(ctx context.Context, appName, envName string, app *api.App) (*api.App, *api.Env, error) {
	if app == nil {
		a, err := v.Client.CreateApp(ctx, &api.NewApp{AppID: NewID(), Name: appName})
		if err != nil {
			return nil, nil, fmt.Errorf("create app %s: %w", appName, err)
		}
		app = a
	}
	aid, err := DecodeID("app id", app.AppID)
	if err != nil {
		return nil, nil, err
	}
	envID := NewID()
	eid, _ := hex.DecodeString(envID)
	ek := vault.NewEnvKey()
	defer ek.Wipe()
	scope := vault.Scope{AccountID: v.Account.ID, AppID: aid, EnvID: eid, Epoch: 1, AppName: appName, EnvName: envName}
	w, err := v.Account.AK.WrapEnvKey(ek, scope)
	if err != nil {
		return nil, nil, err
	}
	env, err := v.Client.CreateEnv(ctx, app.AppID, &api.NewEnv{EnvID: envID, Name: envName, Epoch: 1, WrappedEK: w})
	if err != nil {
		return nil, nil, fmt.Errorf("create env %s/%s: %w", appName, envName, err)
	}
	return app, env, nil
}

// commit seals the change on top of cur and uploads it with the new signed manifest.
func (v *Vault) commit(ctx context.Context, cur *Env, ch *Change) (uint64, error) {
	c, err := vault.NewEnvCipher(cur.ek, cur.scope)
	if err != nil {
		return 0, err
	}
	defer c.Wipe()
	entries := make(map[[envelope.BlindLen]byte]envelope.ManifestEntry, len(cur.entries)+len(ch.Set))
	for b, e := range cur.entries {
		entries[b] = e
	}
	commit := &api.Commit{ExpectedSeq: cur.Seq}
	for _, name := range ch.Delete {
		b, err := c.Blind(name)
		if err != nil {
			return 0, err
		}
		if _, ok := entries[b]; !ok {
			return 0, fmt.Errorf("delete %q: not in %s/%s", name, cur.AppName, cur.EnvName)
		}
		delete(entries, b)
		commit.Delete = append(commit.Delete, bytes.Clone(b[:]))
	}
	for i := range ch.Set {
		s := &ch.Set[i]
		b, err := c.Blind(s.Name)
		if err != nil {
			return 0, err
		}
		version := uint64(1)
		if old, ok := entries[b]; ok {
			version = old.Version + 1
		}
		rec, err := c.Seal(s.Name, version, s.Value)
		if err != nil {
			return 0, fmt.Errorf("seal %q: %w", s.Name, err)
		}
		ent, err := c.Entry(s.Name, version, rec)
		if err != nil {
			return 0, err
		}
		entries[b] = ent
		s.Version = version
		commit.Put = append(commit.Put, api.Record{Blind: bytes.Clone(b[:]), Version: version, Record: rec})
	}
	list := make([]envelope.ManifestEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return bytes.Compare(list[i].Blind, list[j].Blind) < 0 })
	m := c.Manifest(cur.Seq+1, uint64(v.now().Unix()), list)
	m.Prev = vault.ChainPrev(cur.manifestRaw, cur.Seq)
	raw, sig, err := v.Account.Sign.SignManifest(m)
	if err != nil {
		return 0, err
	}
	commit.Manifest, commit.ManifestSig = raw, sig
	res, err := v.Client.Commit(ctx, cur.EnvID, commit)
	if err != nil {
		return 0, fmt.Errorf("write %s/%s: %w", cur.AppName, cur.EnvName, err)
	}
	if res.Seq != m.Seq {
		return 0, tampered("write "+cur.AppName+"/"+cur.EnvName, fmt.Errorf("server acknowledged seq %d, sent %d", res.Seq, m.Seq))
	}
	if err := v.HighWater.Raise(cur.EnvID, m.Seq); err != nil {
		return 0, err
	}
	return m.Seq, nil
}
