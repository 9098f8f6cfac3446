// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
	"github.com/opaquevault/opaquevault/internal/store/pgstore/pgtest"
	"github.com/opaquevault/opaquevault/internal/store/storeopen"
)

// The tests drive the real server (on a loopback listener) with the real internal/api client and a
// real SQLite file (or, with $OV_TEST_POSTGRES_DSN, a real PostgreSQL database). Client-side values (wrapped keys, records) are random bytes of the right shape:
// the server cannot tell them from ciphertext. Manifests and grants are built with internal/envelope
// and signed with crypto/ed25519, as a client would; nothing here decrypts.

var bg = context.Background()

func rnd(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// wrapped is a made-up wrapped 32-byte key: hdr ‖ 72 bytes.
func wrapped() []byte { return append([]byte{1, 1}, rnd(envelope.WrappedKeyLen-2)...) }

// machineWrap is a made-up wrap to a machine: eph_pub ‖ wrapped key.
func machineWrap() []byte { return append(rnd(32), wrapped()...) }

// sealed is a made-up sealed record of n bytes.
func sealed(n int) []byte { return append([]byte{1, 1}, rnd(n-2)...) }

type harness struct {
	t      testing.TB
	db     store.Store
	srv    *Server
	ts     *httptest.Server
	offset atomic.Int64 // added to the clock, to test expiry
}

func noRateLimits() Limits {
	l := DefaultLimits()
	l.KeyRate, l.IPRate, l.LoginRate = Rate{}, Rate{}, Rate{}
	return l
}

func newHarness(t testing.TB, limits Limits) *harness {
	t.Helper()
	db, err := storeopen.Open(bg, testDB(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db}
	srv, err := New(bg, Config{Store: db, Limits: limits, Now: h.now})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = newTestServer(t, srv)
	t.Cleanup(func() { db.Close() })
	return h
}

// testDB is where a harness keeps its data: a new PostgreSQL database when $OV_TEST_POSTGRES_DSN
// names a test server (so every API test runs on both backends in CI), else a new SQLite file.
func testDB(t testing.TB) string {
	if os.Getenv(pgtest.EnvVar) != "" {
		return pgtest.NewDatabase(t)
	}
	return filepath.Join(t.TempDir(), "ov-server.db")
}

// newTestServer serves handler on a loopback listener until the test ends.
func newTestServer(t testing.TB, handler http.Handler) *httptest.Server {
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	return ts
}

// metricsText is what the server's metrics handler answers.
func (h *harness) metricsText() string {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		h.t.Fatalf("metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func (h *harness) now() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) }

func (h *harness) advance(d time.Duration) { h.offset.Add(int64(d)) }

func (h *harness) client(token string) *api.Client {
	h.t.Helper()
	c, err := api.NewClient(h.ts.URL, api.ClientOptions{Token: token, Timeout: 20 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// user is a client-side account: its signing key, login secret and one device key.
type user struct {
	h         *harness
	email     string
	accountID []byte
	signPub   ed25519.PublicKey
	signPriv  ed25519.PrivateKey
	loginAuth [32]byte
	keyID     [8]byte
	token     string
	c         *api.Client
}

func newDevice() (keyID [8]byte, token string, dev api.NewDevice) {
	copy(keyID[:], rnd(8))
	var secret [32]byte
	copy(secret[:], rnd(32))
	v := envelope.APIKeyVerifier(&secret)
	return keyID, string(envelope.FormatAPIToken(keyID, &secret)), api.NewDevice{KeyID: hex.EncodeToString(keyID[:]), Verifier: v[:], Name: "laptop"}
}

func (h *harness) registerRequest(email string) (*user, *api.RegisterRequest) {
	u := &user{h: h, email: email, accountID: rnd(16)}
	u.signPub, u.signPriv, _ = ed25519.GenerateKey(rand.Reader)
	copy(u.loginAuth[:], rnd(32))
	lv := envelope.LoginVerifier(&u.loginAuth)
	var dev api.NewDevice
	u.keyID, u.token, dev = newDevice()
	req := &api.RegisterRequest{
		Email: email, AccountID: hex.EncodeToString(u.accountID),
		KDF:       api.KDF{T: 3, M: 65536, P: 4, Salt: rnd(16)},
		WrappedAK: wrapped(), AKVersion: 1, KeyCheck: rnd(32), LoginVerifier: lv[:],
		WrappedSignSeed: wrapped(), SignPub: u.signPub, Device: dev,
	}
	return u, req
}

func (h *harness) register(email string) *user {
	h.t.Helper()
	u, req := h.registerRequest(email)
	if _, err := h.client("").Register(bg, req); err != nil {
		h.t.Fatalf("register %s: %v", email, err)
	}
	u.c = h.client(u.token)
	return u
}

// env is the client's view of an environment.
type env struct {
	appID, envID     []byte
	appName, envName string
	epoch            uint32
	seq              uint64
	records          map[string]api.Record // by blind id
}

func (u *user) newApp(name string) []byte {
	u.h.t.Helper()
	id := rnd(16)
	if _, err := u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(id), Name: name}); err != nil {
		u.h.t.Fatalf("create app %s: %v", name, err)
	}
	return id
}

func (u *user) newEnv(appID []byte, appName, name string) *env {
	u.h.t.Helper()
	e := &env{appID: appID, envID: rnd(16), appName: appName, envName: name, epoch: 1, records: map[string]api.Record{}}
	if _, err := u.c.CreateEnv(bg, hex.EncodeToString(appID), &api.NewEnv{EnvID: hex.EncodeToString(e.envID), Name: name, Epoch: 1, WrappedEK: wrapped()}); err != nil {
		u.h.t.Fatalf("create env %s: %v", name, err)
	}
	return e
}

// draft is a commit being built: the manifest's fields and entries, and what is sent.
type draft struct {
	expected, seq                 uint64
	epoch                         uint32
	accountID, appID, envID       []byte
	entries                       map[string]envelope.ManifestEntry
	put                           []api.Record
	del                           [][]byte
	rotate                        *api.Rotation
	revoke                        []string
	signer                        ed25519.PrivateKey
	manifestOverride, sigOverride []byte
}

// draft starts a commit on top of the client's view of e.
func (u *user) draft(e *env) *draft {
	d := &draft{expected: e.seq, seq: e.seq + 1, epoch: e.epoch, accountID: u.accountID, appID: e.appID, envID: e.envID,
		entries: map[string]envelope.ManifestEntry{}, signer: u.signPriv}
	for b, r := range e.records {
		h := sha256.Sum256(r.Record)
		d.entries[b] = envelope.ManifestEntry{Blind: r.Blind, Version: r.Version, RecordHash: h[:]}
	}
	return d
}

func (d *draft) putRecord(r api.Record) *draft {
	h := sha256.Sum256(r.Record)
	d.put = append(d.put, r)
	d.entries[string(r.Blind)] = envelope.ManifestEntry{Blind: r.Blind, Version: r.Version, RecordHash: h[:]}
	return d
}

func (d *draft) deleteRecord(blind []byte) *draft {
	d.del = append(d.del, blind)
	delete(d.entries, string(blind))
	return d
}

func (d *draft) manifest() []byte {
	m := &envelope.Manifest{AccountID: d.accountID, AppID: d.appID, EnvID: d.envID, Epoch: d.epoch, EKID: rnd(16),
		Seq: d.seq, IssuedAt: uint64(time.Now().Unix())}
	keys := make([]string, 0, len(d.entries))
	for k := range d.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.Entries = append(m.Entries, d.entries[k])
	}
	return m.Marshal()
}

func (d *draft) build() *api.Commit {
	mb := d.manifest()
	if d.manifestOverride != nil {
		mb = d.manifestOverride
	}
	sig := ed25519.Sign(d.signer, mb)
	if d.sigOverride != nil {
		sig = d.sigOverride
	}
	return &api.Commit{ExpectedSeq: d.expected, Manifest: mb, ManifestSig: sig, Put: d.put, Delete: d.del, Rotate: d.rotate, RevokeMachines: d.revoke}
}

// commit sends d and, on success, updates the client's view of e.
func (u *user) commit(e *env, d *draft) error {
	res, err := u.c.Commit(bg, hex.EncodeToString(e.envID), d.build())
	if err != nil {
		return err
	}
	if res.Seq != d.seq {
		u.h.t.Fatalf("commit answered seq %d, want %d", res.Seq, d.seq)
	}
	e.seq, e.epoch = d.seq, d.epoch
	if d.rotate != nil {
		e.records = map[string]api.Record{}
	}
	for _, b := range d.del {
		delete(e.records, string(b))
	}
	for _, r := range d.put {
		e.records[string(r.Blind)] = r
	}
	return nil
}

// putN commits n new records of size bytes each.
func (u *user) putN(e *env, n, size int) {
	u.h.t.Helper()
	d := u.draft(e)
	for range n {
		d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(size)})
	}
	if err := u.commit(e, d); err != nil {
		u.h.t.Fatalf("commit %d records: %v", n, err)
	}
}

// machine is a machine key as the client sees it.
type machine struct {
	id    [16]byte
	token string
	c     *api.Client
	req   *api.NewMachine
}

// machineRequest prepares a machine registration: scoped to envs, or account-wide when envs is empty.
func (u *user) machineRequest(envs []*env, notAfter uint64) (*machine, *api.NewMachine) {
	m := &machine{}
	copy(m.id[:], rnd(16))
	var auth [32]byte
	copy(auth[:], rnd(32))
	v := envelope.MachineVerifier(&auth)
	m.token = string(envelope.FormatMachineToken(m.id, &auth))
	xpub := rnd(32)
	g := &envelope.Grant{AccountID: u.accountID, MachineID: m.id[:], MachinePub: xpub, NotBefore: uint64(time.Now().Unix()) - 60, NotAfter: notAfter}
	req := &api.NewMachine{MachineID: hex.EncodeToString(m.id[:]), Verifier: v[:], XPub: xpub,
		Pin: api.MachinePin{SignPub: u.signPub, MAC: rnd(32)}, Label: "host:/etc/ov/app.key"}
	for _, e := range envs {
		g.Scopes = append(g.Scopes, envelope.GrantScope{AppID: e.appID, AppName: e.appName, EnvID: e.envID, EnvName: e.envName, SeqMin: e.seq})
		req.Wraps = append(req.Wraps, api.MachineWrap{AppID: hex.EncodeToString(e.appID), EnvID: hex.EncodeToString(e.envID), Epoch: e.epoch, Wrap: machineWrap()})
	}
	if len(envs) == 0 {
		req.AccountWrap, req.AKVersion = machineWrap(), 1
	}
	req.Grant = g.Marshal()
	req.GrantSig = ed25519.Sign(u.signPriv, req.Grant)
	m.req = req
	return m, req
}

func (u *user) newMachine(envs []*env, notAfter uint64) *machine {
	u.h.t.Helper()
	m, req := u.machineRequest(envs, notAfter)
	if err := u.c.CreateMachine(bg, req); err != nil {
		u.h.t.Fatalf("create machine: %v", err)
	}
	m.c = u.h.client(m.token)
	return m
}

// wantAPIError checks that err is an *api.Error with the given status and code.
func wantAPIError(t *testing.T, err error, status int, code string) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want a %d %s answer", err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
	return ae
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
