// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opaquevault/opaquevault/daemon/server"
	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/store/sqlitestore"
	"github.com/opaquevault/opaquevault/internal/testutil"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// These tests run the real ov-server (SQLite in a temp dir) behind a proxy that can rewrite its
// answers: a misbehaving server. Every attack must be detected and refused, never decrypted into a
// wrong value.

var bg = context.Background()

func TestMain(m *testing.M) {
	vault.UseTestKDF()
	m.Run()
}

type tamperProxy struct {
	mu     sync.Mutex
	modify func(path string, body []byte) []byte // nil: pass through
	// fail, when it returns true for a request, answers 503 without passing it on: a server failure.
	fail func(r *http.Request) bool
}

func (p *tamperProxy) failing(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fail != nil && p.fail(r)
}

func (p *tamperProxy) set(f func(path string, body []byte) []byte) {
	p.mu.Lock()
	p.modify = f
	p.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	db    string // the SQLite file of the real server, for attacks that edit it directly
	proxy *tamperProxy
	url   string
	pw    []byte
	ask   *vault.AccountSecretKey
	acct  *Account
	dev   Device
}

func cheapKDF() vault.KDFParams {
	p := vault.NewKDFParams()
	p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
	return p
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "ov.db")
	db, err := sqlitestore.Open(bg, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lim := server.DefaultLimits()
	lim.KeyRate, lim.IPRate, lim.LoginRate = server.Rate{}, server.Rate{}, server.Rate{}
	srv, err := server.New(bg, server.Config{Store: db, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	real := httptest.NewServer(srv)
	t.Cleanup(real.Close)
	target, _ := url.Parse(real.URL)
	p := &tamperProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		f := p.modify
		p.mu.Unlock()
		if f == nil || resp.StatusCode != 200 {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		b = f(resp.Request.URL.Path, b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.failing(r) {
			http.Error(w, `{"error":{"code":"unavailable","message":"injected failure"}}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	f := &fixture{t: t, db: dbPath, proxy: p, url: front.URL, pw: []byte("correct horse battery staple")}
	f.dev = NewDevice("test")
	reg, err := NewAccount("op@example.com", f.pw, cheapKDF(), f.dev)
	if err != nil {
		t.Fatal(err)
	}
	cl := f.client(f.dev.Token)
	if _, err := cl.Register(bg, reg.Request); err != nil {
		t.Fatal(err)
	}
	f.ask, f.acct = reg.ASK, reg.Account
	return f
}

func (f *fixture) client(token string) *api.Client {
	cl, err := api.NewClient(f.url, api.ClientOptions{Token: token})
	if err != nil {
		f.t.Fatal(err)
	}
	return cl
}

func (f *fixture) vault() *Vault {
	hw, err := OpenHighWater(filepath.Join(testutil.SafeTempDir(f.t), "hw.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	return &Vault{Client: f.client(f.dev.Token), Account: f.acct, HighWater: hw}
}

func set(kv ...string) Plan {
	return func(*Env) (*Change, error) {
		ch := &Change{}
		for i := 0; i < len(kv); i += 2 {
			ch.Set = append(ch.Set, Secret{Name: kv[i], Value: []byte(kv[i+1])})
		}
		return ch, nil
	}
}

func values(e *Env) map[string]string {
	m := map[string]string{}
	for _, s := range e.Secrets {
		m[s.Name] = string(s.Value)
	}
	return m
}

func TestWriteReadRoundTrip(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	if _, err := v.Write(bg, "myapp", "production", true, set("A", "1", "B", "two words", "PEM", "-----BEGIN-----\nx\n-----END-----")); err != nil {
		t.Fatal(err)
	}
	e, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	got := values(e)
	want := map[string]string{"A": "1", "B": "two words", "PEM": "-----BEGIN-----\nx\n-----END-----"}
	if fmt.Sprint(got) != fmt.Sprint(want) || e.Seq != 1 {
		t.Fatalf("read %v seq %d, want %v seq 1", got, e.Seq, want)
	}
	// A server that blanks the account's KDF parameters gets no derivation: empty parameters are
	// refused before Argon2id runs (not reported as a wrong password).
	pk, err := PasswordKeys(f.pw, f.ask, e.scopeAccountHex(), api.KDF{})
	if err == nil {
		pk.Wipe()
		t.Fatal("empty KDF parameters were accepted")
	}
}

func (e *Env) scopeAccountHex() string { return fmt.Sprintf("%x", e.scope.AccountID) }

func TestUnlockWrongPassword(t *testing.T) {
	f := newFixture(t)
	b, err := f.client(f.dev.Token).Account(bg)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := PasswordKeys([]byte("wrong"), f.ask, b.AccountID, b.KDF)
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Wipe()
	if _, err := Unlock(pk, b, f.acct.SignPub); !errors.Is(err, vault.ErrWrongPassword) {
		t.Fatalf("unlock with a wrong password: %v, want ErrWrongPassword", err)
	}
	pk2, _ := PasswordKeys(f.pw, f.ask, b.AccountID, b.KDF)
	defer pk2.Wipe()
	acct, err := Unlock(pk2, b, f.acct.SignPub)
	if err != nil {
		t.Fatal(err)
	}
	acct.Wipe()
	other := NewDevice("x")
	reg, _ := NewAccount("other@example.com", f.pw, cheapKDF(), other)
	if _, err := Unlock(pk2, b, reg.Account.SignPub); !errors.Is(err, ErrSigningKeyMismatch) {
		t.Fatalf("unlock against another pinned signing key: %v, want ErrSigningKeyMismatch", err)
	}
}

// Two writers race on one environment: both changes land (the loser re-reads and retries), none is lost.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	f := newFixture(t)
	if _, err := f.vault().Write(bg, "myapp", "production", true, set("BASE", "0")); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	attempts := make(chan int, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v := f.vault()
			v.MaxAttempts = 50
			r, err := v.Write(bg, "myapp", "production", false, set(fmt.Sprintf("W%d", i), strconv.Itoa(i)))
			if err != nil {
				errs <- err
				return
			}
			attempts <- r.Attempts
		}(i)
	}
	wg.Wait()
	close(errs)
	close(attempts)
	for err := range errs {
		t.Fatal(err)
	}
	retried := 0
	for a := range attempts {
		if a > 1 {
			retried++
		}
	}
	e, err := f.vault().Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secrets) != writers+1 || e.Seq != writers+1 {
		t.Fatalf("after %d racing writers: %d secrets at seq %d, want %d at seq %d", writers, len(e.Secrets), e.Seq, writers+1, writers+1)
	}
	t.Logf("%d of %d writers hit a conflict and retried", retried, writers)

	// The raw compare-and-swap: a stale writer gets a conflict.
	v := f.vault()
	cur, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.commit(bg, cur, &Change{Set: []Secret{{Name: "X", Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.commit(bg, cur, &Change{Set: []Secret{{Name: "Y", Value: []byte("1")}}}); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("stale commit: %v, want a conflict", err)
	}
}

// envState rewrites GET /v1/envs/{id} answers.
func envState(f func(st *api.EnvState)) func(string, []byte) []byte {
	return func(path string, body []byte) []byte {
		if !strings.HasPrefix(path, "/v1/envs/") {
			return body
		}
		var st api.EnvState
		if err := json.Unmarshal(body, &st); err != nil {
			panic(err)
		}
		f(&st)
		b, _ := json.Marshal(&st)
		return b
	}
}

func TestMisbehavingServerIsRefused(t *testing.T) { misbehaving(t, nil) }

// The same attacks on a reader that keeps what it verified (the agent's Memo), each right after an
// honest read filled the memo: a new answer is verified in full, never served from memory.
func TestMisbehavingServerIsRefusedWithMemo(t *testing.T) {
	m := NewMemo()
	defer m.Wipe()
	misbehaving(t, m)
}

func misbehaving(t *testing.T, memo *Memo) {
	f := newFixture(t)
	v := f.vault()
	v.Memo = memo
	if _, err := v.Write(bg, "myapp", "production", true, set("DATABASE_URL", "postgres://real", "API_KEY", "real-key")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(bg, "myapp", "staging", true, set("DATABASE_URL", "postgres://staging")); err != nil {
		t.Fatal(err)
	}
	// Capture production at seq 1 and staging's state for replays.
	var old, staging api.EnvState
	capture := func(dst *api.EnvState) func(string, []byte) []byte {
		return func(path string, body []byte) []byte {
			if strings.HasPrefix(path, "/v1/envs/") {
				_ = json.Unmarshal(body, dst)
			}
			return body
		}
	}
	f.proxy.set(capture(&old))
	if _, err := v.Read(bg, "myapp", "production"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(capture(&staging))
	if _, err := v.Read(bg, "myapp", "staging"); err != nil {
		t.Fatal(err)
	}
	f.proxy.set(nil)
	if _, err := v.Write(bg, "myapp", "production", false, set("API_KEY", "rotated-key")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		modify func(string, []byte) []byte
		want   error
	}{
		{"swap two records", envState(func(st *api.EnvState) {
			st.Records[0].Record, st.Records[1].Record = st.Records[1].Record, st.Records[0].Record
		}), vault.ErrRecordMismatch},
		{"flip one bit of a record", envState(func(st *api.EnvState) {
			st.Records[0].Record[40] ^= 1
		}), vault.ErrRecordMismatch},
		{"drop a secret", envState(func(st *api.EnvState) { st.Records = st.Records[:1] }), ErrTampered},
		{"roll back to an older signed state", envState(func(st *api.EnvState) { *st = old }), vault.ErrRollback},
		{"hide everything (seq 0)", envState(func(st *api.EnvState) {
			st.Seq, st.Manifest, st.ManifestSig, st.Records = 0, nil, nil, nil
		}), vault.ErrRollback},
		{"hide everything, in the listing too (seq 0)", func(path string, body []byte) []byte {
			if path == "/v1/apps" {
				var l api.AppList
				if err := json.Unmarshal(body, &l); err != nil {
					panic(err)
				}
				for i := range l.Apps {
					for j := range l.Apps[i].Envs {
						if l.Apps[i].Envs[j].Name == "production" {
							l.Apps[i].Envs[j].Seq, l.Apps[i].Envs[j].Count = 0, 0
						}
					}
				}
				b, _ := json.Marshal(&l)
				return b
			}
			return envState(func(st *api.EnvState) { st.Seq, st.Manifest, st.ManifestSig, st.Records = 0, nil, nil, nil })(path, body)
		}, vault.ErrRollback},
		{"staging's environment key", envState(func(st *api.EnvState) { st.WrappedEK = staging.WrappedEK }), vault.ErrAuth},
		{"staging's whole state under production's ids", envState(func(st *api.EnvState) {
			appID, envID := st.AppID, st.EnvID
			*st = staging
			st.AppID, st.EnvID = appID, envID
		}), ErrTampered},
		{"altered manifest entry", envState(func(st *api.EnvState) {
			st.Manifest[len(st.Manifest)-1] ^= 1
		}), vault.ErrBadSignature},
		{"manifest signed by another key", envState(func(st *api.EnvState) {
			st.ManifestSig[0] ^= 1
		}), vault.ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if memo != nil {
				if _, err := v.Read(bg, "myapp", "production"); err != nil || memo.Len() == 0 {
					t.Fatalf("honest read: %v (memo holds %d)", err, memo.Len())
				}
			}
			f.proxy.set(c.modify)
			defer f.proxy.set(nil)
			e, err := v.Read(bg, "myapp", "production")
			if err == nil {
				t.Fatalf("read succeeded with %v", values(e))
			}
			if !errors.Is(err, ErrTampered) || !errors.Is(err, c.want) {
				t.Fatalf("read: %v, want ErrTampered and %v", err, c.want)
			}
			if testing.Verbose() {
				t.Logf("refused: %v", err)
			}
			if strings.Contains(err.Error(), "real-key") || strings.Contains(err.Error(), "postgres://") {
				t.Fatalf("error shows a value: %v", err)
			}
		})
	}
	// Honest again: the current values come back.
	e, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	if got := values(e)["API_KEY"]; got != "rotated-key" {
		t.Fatalf("API_KEY = %q after the attacks", got)
	}
}
