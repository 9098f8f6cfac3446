// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// ErrNoSuchVersion means a version or sequence asked for is not in the history (never written, or
// its sealed record was pruned by the server's --keep-versions).
var ErrNoSuchVersion = errors.New("no such version in the history")

// SecretVersion is one version of a secret as the verified history shows it.
type SecretVersion struct {
	Name    string
	Version uint64
	Seq     uint64    // the first manifest that listed it
	At      time.Time // when the server stored that manifest
	Actor   string    // the writer as the server saw it: "device:<key_id>" or "machine:<id>"
	// Fingerprint is vault.Fingerprint of the value under the current epoch's key; "" when the
	// sealed record was pruned.
	Fingerprint string
	Value       []byte // nil when pruned; the caller's to wipe (History.Wipe)
}

// ManifestChange is one manifest of the verified history and what it changed against its
// predecessor (names the reader could not recover, whose every record was pruned, show as
// "(pruned <blind hex>)").
type ManifestChange struct {
	Seq      uint64
	Epoch    uint32
	IssuedAt time.Time // signed by the writer
	At       time.Time // when the server stored it
	Actor    string
	Chained  bool
	Added    []string
	Changed  []string
	Removed  []string
	Rotated  bool // the key epoch changed
}

// History is the verified, decrypted history of one environment.
type History struct {
	AppName, EnvName string
	Manifests        []ManifestChange // oldest first
	Versions         []SecretVersion  // by name, then version
	// states[i] is the name → version state after Manifests[i].
	states []map[string]uint64
}

// Wipe clears every value.
func (h *History) Wipe() {
	if h == nil {
		return
	}
	for i := range h.Versions {
		clear(h.Versions[i].Value)
	}
}

// Of returns the versions of one secret, oldest first.
func (h *History) Of(name string) []SecretVersion {
	var out []SecretVersion
	for _, v := range h.Versions {
		if v.Name == name {
			out = append(out, v)
		}
	}
	return out
}

func (h *History) version(name string, version uint64) (SecretVersion, bool) {
	for _, v := range h.Versions {
		if v.Name == name && v.Version == version {
			return v, true
		}
	}
	return SecretVersion{}, false
}

// History reads the manifest history of appName/envName and verifies it against what this client
// trusts: every signature under the pinned account key, the chain (crypto.md §1.6.1), consecutive
// seqs, and a newest manifest identical to the current one (which itself passes the high-water
// check). It then opens every sealed record the server still keeps. A server that drops,
// reorders, replaces or forges a past version gets ErrTampered.
func (v *Vault) History(ctx context.Context, appName, envName string) (*History, error) {
	appName, envName, err := normalize(appName, envName)
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
	defer cur.Wipe()
	what := "verify the history of " + appName + "/" + envName
	served, err := v.Client.EnvHistory(ctx, env.EnvID)
	if err != nil {
		return nil, fmt.Errorf("fetch the history of %s/%s: %w", appName, envName, err)
	}
	links := make([]vault.ChainLink, 0, len(served.Manifests))
	for _, m := range served.Manifests {
		links = append(links, vault.ChainLink{Raw: m.Manifest, Sig: m.ManifestSig})
	}
	ms, err := vault.VerifyHistory(links, vault.ManifestCheck{
		PublicKey: v.Account.SignPub, AccountID: v.Account.ID, AppID: cur.scope.AppID, EnvID: cur.scope.EnvID, HighWater: cur.Seq,
	})
	if err != nil {
		return nil, tampered(what, err)
	}
	if cur.Seq > 0 && (len(ms) == 0 || !bytes.Equal(links[len(links)-1].Raw, cur.manifestRaw)) {
		return nil, tampered(what, errors.New("the newest manifest of the history is not the current one"))
	}
	for i, m := range served.Manifests {
		if m.Seq != ms[i].Seq {
			return nil, tampered(what, errors.New("the history's listing differs from its signed manifests"))
		}
	}

	// The environment keys of every epoch the history names, each checked against the manifests.
	keys := map[uint32]*vault.EnvKey{}
	defer func() {
		for _, k := range keys {
			k.Wipe()
		}
	}()
	wraps := map[uint32][]byte{}
	for _, k := range served.Keys {
		wraps[k.Epoch] = k.WrappedEK
	}
	readers := map[uint32]*vault.EnvReader{}
	defer func() {
		for _, r := range readers {
			r.Wipe()
		}
	}()
	for _, m := range ms {
		if _, ok := readers[m.Epoch]; ok {
			continue
		}
		w, ok := wraps[m.Epoch]
		if !ok {
			return nil, tampered(what, fmt.Errorf("no key wrap for epoch %d", m.Epoch))
		}
		scope := cur.scope
		scope.Epoch = m.Epoch
		ek, err := v.Account.AK.UnwrapEnvKey(w, scope)
		if err != nil {
			return nil, tampered(what, err)
		}
		keys[m.Epoch] = ek
		r, err := vault.NewEnvReader(m, ek)
		if err != nil {
			return nil, tampered(what, err)
		}
		readers[m.Epoch] = r
	}

	// Every sealed record the manifests name, by hash; the server may have pruned some.
	seen := map[[sha256.Size]byte]bool{}
	var hashes [][]byte
	for _, m := range ms {
		for _, e := range m.Entries {
			var h [sha256.Size]byte
			copy(h[:], e.RecordHash)
			if !seen[h] {
				seen[h] = true
				hashes = append(hashes, e.RecordHash)
			}
		}
	}
	records, err := v.historyRecords(ctx, env.EnvID, hashes)
	if err != nil {
		return nil, fmt.Errorf("fetch the past records of %s/%s: %w", appName, envName, err)
	}

	h := &History{AppName: appName, EnvName: envName}
	ok := false
	defer func() {
		if !ok {
			h.Wipe()
		}
	}()
	type opened struct {
		name  string
		value []byte
	}
	byHash := map[[sha256.Size]byte]opened{}
	// names[epoch][blind] recovers a name whose record of this entry was pruned.
	names := map[uint32]map[string]string{}
	for _, m := range ms {
		if names[m.Epoch] == nil {
			names[m.Epoch] = map[string]string{}
		}
		for _, e := range m.Entries {
			var hk [sha256.Size]byte
			copy(hk[:], e.RecordHash)
			rec, ok := records[hk]
			if !ok {
				continue
			}
			if _, done := byHash[hk]; done {
				continue
			}
			name, value, err := readers[m.Epoch].OpenEntry(e, rec)
			if err != nil {
				return nil, tampered(what, err)
			}
			byHash[hk] = opened{name, value}
			names[m.Epoch][string(e.Blind)] = name
		}
	}
	defer func() {
		for _, o := range byHash {
			clear(o.value)
		}
	}()
	fpKey := keys[cur.Epoch]
	listed := map[string]map[uint64]bool{} // name → versions already in h.Versions
	prev := map[string]uint64{}
	prevEpoch := uint32(0)
	for i, m := range ms {
		state := map[string]uint64{}
		for _, e := range m.Entries {
			name, known := names[m.Epoch][string(e.Blind)]
			if !known {
				name = fmt.Sprintf("(pruned %x)", e.Blind[:4])
			}
			state[name] = e.Version
			if !known || listed[name][e.Version] {
				continue
			}
			if listed[name] == nil {
				listed[name] = map[uint64]bool{}
			}
			listed[name][e.Version] = true
			sv := SecretVersion{Name: name, Version: e.Version, Seq: m.Seq, At: served.Manifests[i].At, Actor: served.Manifests[i].Actor}
			var hk [sha256.Size]byte
			copy(hk[:], e.RecordHash)
			if o, have := byHash[hk]; have {
				sv.Value = bytes.Clone(o.value)
				if fpKey != nil {
					if sv.Fingerprint, err = vault.Fingerprint(fpKey, cur.scope, name, o.value); err != nil {
						return nil, err
					}
				}
			}
			h.Versions = append(h.Versions, sv)
		}
		mc := ManifestChange{
			Seq: m.Seq, Epoch: m.Epoch, IssuedAt: time.Unix(int64(m.IssuedAt), 0).UTC(), At: served.Manifests[i].At,
			Actor: served.Manifests[i].Actor, Chained: m.Chained(), Rotated: i > 0 && m.Epoch != prevEpoch,
		}
		for name, ver := range state {
			if old, had := prev[name]; !had {
				mc.Added = append(mc.Added, name)
			} else if old != ver {
				mc.Changed = append(mc.Changed, name)
			}
		}
		for name := range prev {
			if _, has := state[name]; !has {
				mc.Removed = append(mc.Removed, name)
			}
		}
		sort.Strings(mc.Added)
		sort.Strings(mc.Changed)
		sort.Strings(mc.Removed)
		h.Manifests = append(h.Manifests, mc)
		h.states = append(h.states, state)
		prev, prevEpoch = state, m.Epoch
	}
	sort.SliceStable(h.Versions, func(i, j int) bool {
		if h.Versions[i].Name != h.Versions[j].Name {
			return h.Versions[i].Name < h.Versions[j].Name
		}
		return h.Versions[i].Version < h.Versions[j].Version
	})
	ok = true
	return h, nil
}

// historyRecords fetches the records with these hashes in requests of at most api.MaxHistoryHashes,
// asking again for what an answer omitted for size. Records are keyed by their own SHA-256, so a
// record served under another hash is never taken for it.
func (v *Vault) historyRecords(ctx context.Context, envID string, hashes [][]byte) (map[[sha256.Size]byte][]byte, error) {
	records := map[[sha256.Size]byte][]byte{}
	for len(hashes) > 0 {
		n := min(len(hashes), api.MaxHistoryHashes)
		batch := hashes[:n]
		hashes = hashes[n:]
		got, err := v.Client.HistoryRecords(ctx, envID, batch)
		if err != nil {
			return nil, err
		}
		added := 0
		for _, r := range got.Records {
			h := sha256.Sum256(r.Record)
			if records[h] == nil {
				added++
			}
			records[h] = r.Record
		}
		if added == 0 && len(got.Omitted) > 0 {
			return nil, tampered("fetch past records", errors.New("the server omitted records without sending any"))
		}
		asked := map[[sha256.Size]byte]bool{}
		for _, h := range batch {
			asked[[sha256.Size]byte(h)] = true
		}
		for _, h := range got.Omitted {
			if len(h) == sha256.Size && asked[[sha256.Size]byte(h)] && records[[sha256.Size]byte(h)] == nil {
				hashes = append(hashes, h)
			}
		}
	}
	return records, nil
}

// RollbackResult reports a rollback: the names written and removed, and the new seq (0 with
// DryRun, or when nothing changed).
type RollbackResult struct {
	Set    []string
	Delete []string
	Seq    uint64
}

// RollbackSecret writes version `to` of secret name of appName/envName back as a new version
// (history never rewinds). With dryRun nothing is written. Errors wrap ErrNoSuchVersion or
// ErrTampered.
func (v *Vault) RollbackSecret(ctx context.Context, appName, envName, name string, to uint64, dryRun bool) (*RollbackResult, error) {
	n, err := envelope.NormalizeName(name)
	if err != nil {
		return nil, err
	}
	h, err := v.History(ctx, appName, envName)
	if err != nil {
		return nil, err
	}
	defer h.Wipe()
	old, ok := h.version(n, to)
	if !ok || old.Value == nil {
		return nil, fmt.Errorf("roll back %s in %s/%s: version %d: %w", n, h.AppName, h.EnvName, to, ErrNoSuchVersion)
	}
	return v.rollback(ctx, h, map[string][]byte{n: old.Value}, nil, dryRun)
}

// RollbackEnv writes the state of appName/envName after manifest seq `to` back as one new commit:
// names whose value differs are set, names added since are removed. Errors wrap ErrNoSuchVersion
// (seq not in the history, or a value it needs was pruned) or ErrTampered.
func (v *Vault) RollbackEnv(ctx context.Context, appName, envName string, to uint64, dryRun bool) (*RollbackResult, error) {
	h, err := v.History(ctx, appName, envName)
	if err != nil {
		return nil, err
	}
	defer h.Wipe()
	idx := -1
	for i, m := range h.Manifests {
		if m.Seq == to {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("roll back %s/%s to seq %d: %w", h.AppName, h.EnvName, to, ErrNoSuchVersion)
	}
	want := map[string][]byte{}
	for name, ver := range h.states[idx] {
		old, ok := h.version(name, ver)
		if !ok || old.Value == nil {
			return nil, fmt.Errorf("roll back %s/%s to seq %d: %s version %d was pruned: %w", h.AppName, h.EnvName, to, name, ver, ErrNoSuchVersion)
		}
		want[name] = old.Value
	}
	return v.rollback(ctx, h, want, func(name string) bool { _, keep := want[name]; return keep }, dryRun)
}

// rollback writes want (name → value) where the current value differs, and, when keep is set,
// deletes the current names it does not keep.
func (v *Vault) rollback(ctx context.Context, h *History, want map[string][]byte, keep func(string) bool, dryRun bool) (*RollbackResult, error) {
	res := &RollbackResult{}
	plan := func(cur *Env) (*Change, error) {
		ch := &Change{}
		res.Set, res.Delete = nil, nil
		for name, val := range want {
			if s, ok := cur.Lookup(name); ok && bytes.Equal(s.Value, val) {
				continue
			}
			ch.Set = append(ch.Set, Secret{Name: name, Value: bytes.Clone(val)})
			res.Set = append(res.Set, name)
		}
		if keep != nil {
			for _, s := range cur.Secrets {
				if !keep(s.Name) {
					ch.Delete = append(ch.Delete, s.Name)
					res.Delete = append(res.Delete, s.Name)
				}
			}
		}
		sort.Strings(res.Set)
		sort.Strings(res.Delete)
		if dryRun {
			return &Change{}, nil
		}
		return ch, nil
	}
	w, err := v.Write(ctx, h.AppName, h.EnvName, false, plan)
	if err != nil {
		return nil, err
	}
	if w.Change != nil {
		for i := range w.Change.Set {
			clear(w.Change.Set[i].Value)
		}
		res.Seq = w.Seq
	}
	return res, nil
}
