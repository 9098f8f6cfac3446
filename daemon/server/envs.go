// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

func envInfo(e *store.Env) api.Env {
	return api.Env{
		EnvID: hexID(e.ID), AppID: hexID(e.AppID), Name: e.Name, Epoch: e.Epoch, Seq: e.Seq, Count: e.Count,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if m := rc.p.machine; m != nil && !m.AccountWide() {
		return forbidden("list apps: a scoped machine key may read only its granted environments")
	}
	apps, err := s.st.Apps(r.Context(), rc.accountID)
	if err != nil {
		return err
	}
	out := api.AppList{Apps: make([]api.App, 0, len(apps))}
	for _, a := range apps {
		app := api.App{AppID: hexID(a.ID), Name: a.Name, CreatedAt: a.CreatedAt, Envs: make([]api.Env, 0, len(a.Envs))}
		for i := range a.Envs {
			app.Envs = append(app.Envs, envInfo(&a.Envs[i]))
		}
		out.Apps = append(out.Apps, app)
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req api.NewApp
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := parseID("app_id", req.AppID, envelope.IDLen)
	if err != nil {
		return err
	}
	if err := checkScope("app", req.Name); err != nil {
		return err
	}
	rc.target = "app:" + req.AppID
	a := &store.App{ID: id, AccountID: rc.accountID, Name: req.Name, CreatedAt: s.now()}
	if err := s.withQuota(r.Context(), rc.accountID, quotaCheck{apps: 1}, func() error { return s.st.CreateApp(r.Context(), a) }); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("create app: name %q or id %s already taken", req.Name, req.AppID)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, &api.App{AppID: req.AppID, Name: a.Name, CreatedAt: a.CreatedAt, Envs: []api.Env{}})
	return nil
}

func (s *Server) createEnv(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	appID, err := parseID("app_id", r.PathValue("app_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	var req api.NewEnv
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := parseID("env_id", req.EnvID, envelope.IDLen)
	if err != nil {
		return err
	}
	if err := checkScope("env", req.Name); err != nil {
		return err
	}
	if req.Epoch < 1 {
		return badRequest("create env: epoch must be at least 1")
	}
	if err := checkWrappedKey("wrapped_ek", req.WrappedEK); err != nil {
		return err
	}
	rc.target = "env:" + req.EnvID
	now := s.now()
	e := &store.Env{ID: id, AppID: appID, AccountID: rc.accountID, Name: req.Name, Epoch: req.Epoch, WrappedEK: req.WrappedEK, CreatedAt: now}
	switch err := s.withQuota(r.Context(), rc.accountID, quotaCheck{envs: 1}, func() error { return s.st.CreateEnv(r.Context(), e) }); {
	case errors.Is(err, store.ErrNotFound):
		return notFound("create env: app %s not found", hexID(appID))
	case errors.Is(err, store.ErrExists):
		return conflict("create env: name %q or id %s already taken", req.Name, req.EnvID)
	case err != nil:
		return err
	}
	e.UpdatedAt = now
	out := envInfo(e)
	writeJSON(w, http.StatusCreated, &out)
	return nil
}

func (s *Server) getEnv(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	id, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "env:" + hexID(id)
	m := rc.p.machine
	scoped := m != nil && !m.AccountWide()
	var machineID []byte
	if m != nil {
		machineID = m.ID
	}
	head, err := s.envHead(ctx, id, machineID, rc.liveVerifier)
	if rc.liveVerifier != nil && (err == nil && !head.MachineLive || errors.Is(err, store.ErrNotFound) && !s.machineExists(ctx, m)) {
		// The machine came from the cache and was deleted (revoked) since.
		s.machines.drop(m.ID)
		rc.p, rc.claimed = nil, "machine:"+hexID(m.ID)
		return unauthorized(machineUnknown)
	}
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(head.AccountID, rc.accountID) {
		return notFound("read env: %s not found", hexID(id))
	}
	if err != nil {
		return err
	}
	if scoped && head.MachineWrap == nil {
		return forbidden("read env: %s is not in this machine key's scope", hexID(id))
	}
	wrap := head.MachineWrap
	ent := s.envs.get(id)
	if ent != nil && ent.current(head) {
		s.metrics.envCache.WithLabelValues("hit").Inc()
	} else {
		s.metrics.envCache.WithLabelValues("miss").Inc()
		// A commit may land between the head and this snapshot: the snapshot then wins, with the
		// machine wrap of its own epoch.
		gen := s.gen.Load()
		opt := store.ReadOptions{Records: store.RecordsFull}
		if scoped {
			opt.MachineID = m.ID
		}
		v, err := s.st.ReadEnv(ctx, id, opt)
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v.Env.AccountID, rc.accountID) {
			return notFound("read env: %s not found", hexID(id))
		}
		if err != nil {
			return err
		}
		if scoped && v.MachineWrap == nil {
			return forbidden("read env: %s is not in this machine key's scope", hexID(id))
		}
		if ent, err = newEnvEntry(v); err != nil {
			return err
		}
		s.envs.put(gen, id, ent)
		wrap = v.MachineWrap
	}
	// The signed allowed set of the epoch (crypto.md §2.8) is re-signed at a revocation without a
	// commit, so it is not cached with the env: it comes with the head, in the same statement, or,
	// when a commit raced the head and the snapshot is of a newer epoch, is read for that epoch.
	var access *store.SignedObject
	if ent.epoch == head.Epoch {
		if head.AccessRaw != nil {
			access = &store.SignedObject{Raw: head.AccessRaw, Sig: head.AccessSig}
		}
	} else {
		switch acc, err := s.st.Signed(ctx, rc.accountID, kindEnvAccess, envAccessKey(id, ent.epoch)); {
		case err == nil:
			access = acc
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if scoped {
		ent.write(w, "machine_wrap", wrap, access)
	} else {
		ent.write(w, "wrapped_ek", ent.wrappedEK, access)
	}
	return nil
}

// pointCtx is the context of a point lookup on the hot path: it finishes in microseconds, so it
// is not tied to the request's cancellation, which spares the SQLite driver a watcher goroutine
// per query. Deadlines set by the store or the database still apply.
func pointCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// machineExists reads whether m (id and verifier) is still stored.
func (s *Server) machineExists(ctx context.Context, m *store.Machine) bool {
	cur, err := s.st.Machine(ctx, m.ID)
	return err == nil && bytes.Equal(cur.Verifier, m.Verifier)
}

// commit checks a Commit against the environment and its signed manifest, then applies it with a
// compare-and-swap on the sequence. Everything it checks is public: ids, lengths, hashes, and the
// Ed25519 signature under the account's public signing key.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	envID, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "env:" + hexID(envID)
	var req api.Commit
	if err := decode(r, &req); err != nil {
		return err
	}
	account, err := s.loadAccount(ctx, rc)
	if err != nil {
		return err
	}
	// The snapshot the commit is checked against: the CAS on seq below guarantees that the records
	// did not change between this read and the write.
	v, err := s.st.ReadEnv(ctx, envID, store.ReadOptions{Records: store.RecordsIndex})
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v.Env.AccountID, rc.accountID) {
		return notFound("commit: env %s not found", hexID(envID))
	}
	if err != nil {
		return err
	}
	env := &v.Env

	if req.ExpectedSeq >= maxInt64 {
		return badRequest("commit: expected_seq %d out of range", req.ExpectedSeq)
	}
	m, err := envelope.ParseManifest(req.Manifest)
	if err != nil {
		return badRequest("commit: manifest: %v", err)
	}
	if m.Seq != req.ExpectedSeq+1 {
		return badRequest("commit: manifest seq %d is not expected_seq+1 (%d)", m.Seq, req.ExpectedSeq+1)
	}
	if !bytes.Equal(m.AccountID, env.AccountID) || !bytes.Equal(m.AppID, env.AppID) || !bytes.Equal(m.EnvID, env.ID) {
		return badRequest("commit: manifest names account %x, app %x, env %x: not this environment", m.AccountID, m.AppID, m.EnvID)
	}
	if len(req.ManifestSig) != signatureLen || len(account.SignPub) != ed25519.PublicKeySize ||
		!ed25519.Verify(ed25519.PublicKey(account.SignPub), req.Manifest, req.ManifestSig) {
		return badRequest("commit: manifest signature does not verify under the account signing key")
	}
	if len(m.Entries) > s.lim.MaxSecrets || len(req.Put) > s.lim.MaxSecrets {
		return errorf(http.StatusUnprocessableEntity, api.CodeTooMany, "commit: %d secrets, at most %d per environment", max(len(m.Entries), len(req.Put)), s.lim.MaxSecrets)
	}
	// Cheap to check, and it spares the records check below for a stale writer.
	if env.Seq != req.ExpectedSeq {
		s.metrics.conflicts.Inc()
		return conflict("commit: env %s is at seq %d, not %d: read it again", hexID(envID), env.Seq, req.ExpectedSeq)
	}
	if err := checkChain(env, m); err != nil {
		return err
	}

	wantEpoch := env.Epoch
	var rot *store.Rotation
	if req.Rotate != nil {
		if rot, err = s.checkRotation(ctx, rc, env, &req); err != nil {
			return err
		}
		wantEpoch = rot.Epoch
	}
	if m.Epoch != wantEpoch {
		return badRequest("commit: manifest epoch %d, want %d", m.Epoch, wantEpoch)
	}

	put, del, err := s.checkRecords(&req, v, m)
	if err != nil {
		return err
	}
	revoke, err := s.checkRevocations(ctx, rc, req.RevokeMachines)
	if err != nil {
		return err
	}
	grow := recordsGrowth(v, put, del, rot != nil)
	err = s.withQuota(ctx, rc.accountID, grow, func() error {
		return s.st.CommitEnv(ctx, &store.Commit{
			EnvID: envID, ExpectedSeq: req.ExpectedSeq, Seq: m.Seq, Manifest: req.Manifest, ManifestSig: req.ManifestSig,
			Put: put, Delete: del, Rotate: rot, RevokeMachines: revoke, At: s.now(),
			Actor: rc.actor(), KeepVersions: s.lim.KeepVersions,
		})
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		s.metrics.conflicts.Inc()
		return conflict("commit: env %s changed since seq %d: read it again", hexID(envID), req.ExpectedSeq)
	case errors.Is(err, store.ErrNotFound):
		return notFound("commit: env %s or a machine it names no longer exists", hexID(envID))
	case err != nil:
		return err
	}
	s.forget(store.Change{Kind: store.ChangeEnv, ID: envID})
	for _, id := range revoke {
		s.forget(store.Change{Kind: store.ChangeMachine, ID: id})
	}
	writeJSON(w, http.StatusOK, &api.CommitResult{Seq: m.Seq})
	return nil
}

// checkRecords checks Put and Delete and that, once applied, the stored records are exactly the
// manifest's entries.
func (s *Server) checkRecords(req *api.Commit, v *store.EnvView, m *envelope.Manifest) ([]store.Record, [][]byte, error) {
	type entry struct {
		version uint64
		hash    []byte
		size    int
	}
	result := make(map[string]entry, len(v.Records)+len(req.Put))
	if req.Rotate == nil {
		for _, r := range v.Records {
			result[string(r.Blind)] = entry{r.Version, r.Hash, r.Size}
		}
	} else if len(req.Delete) > 0 {
		return nil, nil, badRequest("commit: delete with rotate: a rotation replaces every record, so list only put")
	}
	seen := make(map[string]bool, len(req.Put)+len(req.Delete))
	for _, b := range req.Delete {
		if len(b) != envelope.BlindLen {
			return nil, nil, badRequest("commit: delete: blind id of %d bytes, want %d", len(b), envelope.BlindLen)
		}
		if seen[string(b)] {
			return nil, nil, badRequest("commit: blind id %x listed twice", b)
		}
		seen[string(b)] = true
		if _, ok := result[string(b)]; !ok {
			return nil, nil, badRequest("commit: delete of %x, which is not stored", b)
		}
		delete(result, string(b))
	}
	put := make([]store.Record, 0, len(req.Put))
	for _, p := range req.Put {
		if len(p.Blind) != envelope.BlindLen {
			return nil, nil, badRequest("commit: put: blind id of %d bytes, want %d", len(p.Blind), envelope.BlindLen)
		}
		if seen[string(p.Blind)] {
			return nil, nil, badRequest("commit: blind id %x listed twice", p.Blind)
		}
		seen[string(p.Blind)] = true
		if p.Version > maxInt64 {
			return nil, nil, badRequest("commit: record %x: version %d out of range", p.Blind, p.Version)
		}
		if len(p.Record) > s.lim.MaxRecordBytes {
			return nil, nil, tooLarge("commit: record %x is %d bytes, at most %d", p.Blind, len(p.Record), s.lim.MaxRecordBytes)
		}
		if len(p.Record) < envelope.MinRecordLen || p.Record[0] != envelope.Version || p.Record[1] != envelope.SuiteXChaCha20Poly1305 {
			return nil, nil, badRequest("commit: record %x: want at least %d bytes starting 01 01", p.Blind, envelope.MinRecordLen)
		}
		h := sha256.Sum256(p.Record)
		result[string(p.Blind)] = entry{p.Version, h[:], len(p.Record)}
		put = append(put, store.Record{Blind: p.Blind, Version: p.Version, Data: p.Record})
	}
	if len(result) > s.lim.MaxSecrets {
		return nil, nil, errorf(http.StatusUnprocessableEntity, api.CodeTooMany, "commit: %d secrets, at most %d per environment", len(result), s.lim.MaxSecrets)
	}
	var total int64
	for _, e := range result {
		total += int64(e.size)
	}
	if total > s.lim.MaxEnvBytes {
		return nil, nil, tooLarge("commit: the environment would hold %d bytes of records, at most %d", total, s.lim.MaxEnvBytes)
	}
	for _, e := range m.Entries {
		got, ok := result[string(e.Blind)]
		switch {
		case !ok:
			return nil, nil, badRequest("commit: manifest lists %x, which is neither stored nor put", e.Blind)
		case got.version != e.Version:
			return nil, nil, badRequest("commit: record %x: version %d, manifest says %d", e.Blind, got.version, e.Version)
		case !bytes.Equal(got.hash, e.RecordHash):
			return nil, nil, badRequest("commit: record %x: SHA-256 does not match the manifest", e.Blind)
		}
		delete(result, string(e.Blind))
	}
	if len(result) > 0 {
		extra := make([]string, 0, len(result))
		for b := range result {
			extra = append(extra, hexID([]byte(b)))
		}
		slices.Sort(extra)
		return nil, nil, badRequest("commit: record %s would be stored but is not in the manifest (delete it or list it)", extra[0])
	}
	del := req.Delete
	if req.Rotate != nil {
		del = nil
	}
	return put, del, nil
}

// checkRotation checks a key rotation: a later epoch, a well-formed wrap, and machine wraps for
// scoped machines of the account whose grants cover this environment.
func (s *Server) checkRotation(ctx context.Context, rc *reqCtx, env *store.Env, req *api.Commit) (*store.Rotation, error) {
	rot := req.Rotate
	if rot.Epoch <= env.Epoch {
		return nil, badRequest("commit: rotate to epoch %d, which is not after the current %d", rot.Epoch, env.Epoch)
	}
	if err := checkWrappedKey("rotate: wrapped_ek", rot.WrappedEK); err != nil {
		return nil, err
	}
	revoked := map[string]bool{}
	for _, id := range req.RevokeMachines {
		revoked[id] = true
	}
	out := &store.Rotation{Epoch: rot.Epoch, WrappedEK: rot.WrappedEK}
	seen := map[string]bool{}
	for i, mw := range rot.MachineWraps {
		id, err := parseID("rotate: machine_wraps: machine_id", mw.MachineID, envelope.IDLen)
		if err != nil {
			return nil, err
		}
		if seen[mw.MachineID] || revoked[mw.MachineID] {
			return nil, badRequest("commit: rotate: machine %s listed twice, or both wrapped and revoked", mw.MachineID)
		}
		seen[mw.MachineID] = true
		if mw.AppID != hexID(env.AppID) || mw.EnvID != hexID(env.ID) || mw.Epoch != rot.Epoch {
			return nil, badRequest("commit: rotate: machine wrap %d is not for this environment at epoch %d", i, rot.Epoch)
		}
		if err := checkMachineWrap("rotate: machine wrap", mw.Wrap); err != nil {
			return nil, err
		}
		m, err := s.st.Machine(ctx, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(m.AccountID, rc.accountID) {
			return nil, notFound("commit: rotate: machine %s not found", mw.MachineID)
		}
		if err != nil {
			return nil, err
		}
		if m.AccountWide() {
			return nil, badRequest("commit: rotate: machine %s is account-wide and takes no environment wraps", mw.MachineID)
		}
		if err := grantCovers(m.Grant, env.AppID, env.ID); err != nil {
			return nil, badRequest("commit: rotate: machine %s: %v", mw.MachineID, err)
		}
		out.MachineWraps = append(out.MachineWraps, store.MachineWrap{MachineID: id, AppID: env.AppID, EnvID: env.ID, Epoch: rot.Epoch, Wrap: mw.Wrap})
	}
	return out, nil
}

// checkRevocations parses the machines a commit revokes and checks they belong to the account.
func (s *Server) checkRevocations(ctx context.Context, rc *reqCtx, ids []string) ([][]byte, error) {
	out := make([][]byte, 0, len(ids))
	seen := map[string]bool{}
	for _, s2 := range ids {
		id, err := parseID("revoke_machines", s2, envelope.IDLen)
		if err != nil {
			return nil, err
		}
		if seen[s2] {
			return nil, badRequest("commit: revoke_machines: %s listed twice", s2)
		}
		seen[s2] = true
		m, err := s.st.Machine(ctx, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(m.AccountID, rc.accountID) {
			return nil, notFound("commit: revoke_machines: machine %s not found", s2)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// grantCovers reports (as an error) whether a stored grant lists (appID, envID) among its scopes.
func grantCovers(grant, appID, envID []byte) error {
	g, err := envelope.ParseGrant(grant)
	if err != nil {
		return err
	}
	for _, sc := range g.Scopes {
		if bytes.Equal(sc.AppID, appID) && bytes.Equal(sc.EnvID, envID) {
			return nil
		}
	}
	return errors.New("its grant does not cover this environment")
}
