// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
)

// The load generator is a client of the real API. What it stores has the shapes the server checks
// (wrapped keys, sealed records, signed manifests and grants) with random bytes where ciphertext
// goes: the server cannot tell them apart, and nothing here needs a key.

func rnd(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func wrappedKey() []byte  { return append([]byte{1, 1}, rnd(envelope.WrappedKeyLen-2)...) }
func machineWrap() []byte { return append(rnd(32), wrappedKey()...) }
func sealed(n int) []byte { return append([]byte{1, 1}, rnd(n-2)...) }

// account is the one account every environment belongs to.
type account struct {
	id       []byte
	signPub  ed25519.PublicKey
	signPriv ed25519.PrivateKey
	token    string // device token
}

// envState is one environment as its (only) writer knows it.
type envState struct {
	appID, envID []byte
	epoch        uint32
	seq          uint64
	records      map[string]api.Record
	manifest     []byte
	machineToken string
	// uncertain is set when a commit's outcome is unknown (no answer): the check then accepts
	// the state before it and the state after it.
	uncertain *pending
}

type pending struct {
	seq      uint64
	manifest []byte
	records  map[string]api.Record
}

func register(ctx context.Context, c *api.Client) (*account, error) {
	a := &account{id: rnd(16)}
	a.signPub, a.signPriv, _ = ed25519.GenerateKey(rand.Reader)
	var login [32]byte
	copy(login[:], rnd(32))
	lv := envelope.LoginVerifier(&login)
	var keyID [8]byte
	copy(keyID[:], rnd(8))
	var secret [32]byte
	copy(secret[:], rnd(32))
	v := envelope.APIKeyVerifier(&secret)
	a.token = string(envelope.FormatAPIToken(keyID, &secret))
	_, err := c.Register(ctx, &api.RegisterRequest{
		Email: fmt.Sprintf("loadgen-%x@example.com", rnd(4)), AccountID: hex.EncodeToString(a.id),
		KDF:       api.KDF{T: 3, M: 65536, P: 4, Salt: rnd(16)},
		WrappedAK: wrappedKey(), AKVersion: 1, KeyCheck: rnd(32), LoginVerifier: lv[:],
		WrappedSignSeed: wrappedKey(), SignPub: a.signPub,
		Device: api.NewDevice{KeyID: hex.EncodeToString(keyID[:]), Verifier: v[:], Name: "loadgen"},
	})
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return a, nil
}

// newEnv creates an app with one environment of n secrets of size bytes each, and a machine key
// scoped to it (as `ov auth derive-machine-key --app A --env E` makes).
func (a *account) newEnv(ctx context.Context, c *api.Client, name string, n, size int) (*envState, error) {
	e := &envState{appID: rnd(16), envID: rnd(16), epoch: 1, records: map[string]api.Record{}}
	if _, err := c.CreateApp(ctx, &api.NewApp{AppID: hex.EncodeToString(e.appID), Name: name}); err != nil {
		return nil, fmt.Errorf("create app: %w", err)
	}
	if _, err := c.CreateEnv(ctx, hex.EncodeToString(e.appID), &api.NewEnv{EnvID: hex.EncodeToString(e.envID), Name: "production", Epoch: 1, WrappedEK: wrappedKey()}); err != nil {
		return nil, fmt.Errorf("create env: %w", err)
	}
	put := make([]api.Record, 0, n)
	for range n {
		put = append(put, api.Record{Blind: rnd(16), Version: 1, Record: sealed(size)})
	}
	if _, err := a.commit(ctx, c, e, put, nil); err != nil {
		return nil, err
	}
	var mid [16]byte
	copy(mid[:], rnd(16))
	var auth [32]byte
	copy(auth[:], rnd(32))
	mv := envelope.MachineVerifier(&auth)
	e.machineToken = string(envelope.FormatMachineToken(mid, &auth))
	xpub := rnd(32)
	g := &envelope.Grant{AccountID: a.id, MachineID: mid[:], MachinePub: xpub, NotBefore: uint64(time.Now().Unix()) - 60,
		Scopes: []envelope.GrantScope{{AppID: e.appID, AppName: name, EnvID: e.envID, EnvName: "production", SeqMin: e.seq}}}
	grant := g.Marshal()
	err := c.CreateMachine(ctx, &api.NewMachine{
		MachineID: hex.EncodeToString(mid[:]), Verifier: mv[:], XPub: xpub, Grant: grant, GrantSig: ed25519.Sign(a.signPriv, grant),
		Pin: api.MachinePin{SignPub: a.signPub, MAC: rnd(32)}, Label: "loadgen:/etc/ov/" + name + ".key",
		Wraps: []api.MachineWrap{{AppID: hex.EncodeToString(e.appID), EnvID: hex.EncodeToString(e.envID), Epoch: 1, Wrap: machineWrap()}},
	})
	if err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	return e, nil
}

// commit writes put (and deletes del) on top of the writer's view of e, with a new signed
// manifest; on success the view moves to the new state. An error without an answer from the
// server leaves the outcome unknown, which the final check allows for.
func (a *account) commit(ctx context.Context, c *api.Client, e *envState, put []api.Record, del [][]byte) (bool, error) {
	if e.uncertain != nil {
		// Learn whether the unanswered commit landed before writing on top of it.
		st, err := c.Env(ctx, hex.EncodeToString(e.envID))
		if err != nil {
			return false, fmt.Errorf("re-read env: %w", err)
		}
		if same(st, *e.uncertain) == nil {
			e.seq, e.manifest, e.records = e.uncertain.seq, e.uncertain.manifest, e.uncertain.records
		}
		e.uncertain = nil
	}
	next := make(map[string]api.Record, len(e.records)+len(put))
	for k, r := range e.records {
		next[k] = r
	}
	for _, b := range del {
		delete(next, string(b))
	}
	for _, r := range put {
		next[string(r.Blind)] = r
	}
	m := &envelope.Manifest{AccountID: a.id, AppID: e.appID, EnvID: e.envID, Epoch: e.epoch, EKID: rnd(16), Seq: e.seq + 1, IssuedAt: uint64(time.Now().Unix())}
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := next[k]
		h := sha256.Sum256(r.Record)
		m.Entries = append(m.Entries, envelope.ManifestEntry{Blind: r.Blind, Version: r.Version, RecordHash: h[:]})
	}
	mb := m.Marshal()
	_, err := c.Commit(ctx, hex.EncodeToString(e.envID), &api.Commit{ExpectedSeq: e.seq, Manifest: mb, ManifestSig: ed25519.Sign(a.signPriv, mb), Put: put, Delete: del})
	if err != nil {
		var ae *api.Error
		if !errors.As(err, &ae) {
			e.uncertain = &pending{seq: e.seq + 1, manifest: mb, records: next}
		}
		return false, fmt.Errorf("commit: %w", err)
	}
	e.seq, e.manifest, e.records, e.uncertain = e.seq+1, mb, next, nil
	return true, nil
}

// changeOne re-seals one secret of e with a new version, as `ov secret set` does.
func (a *account) changeOne(ctx context.Context, c *api.Client, e *envState) (bool, error) {
	var pick api.Record
	for _, r := range e.records {
		pick = r
		break
	}
	return a.commit(ctx, c, e, []api.Record{{Blind: pick.Blind, Version: pick.Version + 1, Record: sealed(len(pick.Record))}}, nil)
}

// check reads every environment back with the device key and compares it with what its writer
// committed: the seq, the signed manifest, and every record.
func (a *account) check(ctx context.Context, c *api.Client, envs []*envState) error {
	for i, e := range envs {
		st, err := c.Env(ctx, hex.EncodeToString(e.envID))
		if err != nil {
			return fmt.Errorf("check env %d: %w", i, err)
		}
		want := []pending{{seq: e.seq, manifest: e.manifest, records: e.records}}
		if e.uncertain != nil {
			want = append(want, *e.uncertain)
		}
		var mismatch error
		for _, w := range want {
			if mismatch = same(st, w); mismatch == nil {
				break
			}
		}
		if mismatch != nil {
			return fmt.Errorf("check env %d: %w", i, mismatch)
		}
	}
	return nil
}

func same(st *api.EnvState, w pending) error {
	if st.Seq != w.seq || string(st.Manifest) != string(w.manifest) {
		return fmt.Errorf("server at seq %d, the writer committed seq %d (or its manifest differs)", st.Seq, w.seq)
	}
	if len(st.Records) != len(w.records) {
		return fmt.Errorf("%d records on the server, %d committed", len(st.Records), len(w.records))
	}
	for _, r := range st.Records {
		c, ok := w.records[string(r.Blind)]
		if !ok || c.Version != r.Version || string(c.Record) != string(r.Record) {
			return fmt.Errorf("record %x differs from what was committed", r.Blind)
		}
	}
	return nil
}
