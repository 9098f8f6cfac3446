// SPDX-License-Identifier: Apache-2.0

package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

func TestRegisterAndLogin(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("Alice@Example.com")

	b, err := u.c.Account(bg)
	if err != nil {
		t.Fatal(err)
	}
	if b.AccountID != hex.EncodeToString(u.accountID) || b.Email != "alice@example.com" || !sameBytes(b.SignPub, u.signPub) ||
		b.KDF.T != 3 || b.KDF.M != 65536 || b.KDF.P != 4 || len(b.WrappedAK) != 74 || b.AKVersion != 1 {
		t.Fatalf("account bundle: %+v", b)
	}

	// Login enrols a second device with the right login_auth.
	anon := h.client("")
	keyID, token, dev := newDevice()
	dev.Name = "server"
	lb, err := anon.Login(bg, &api.LoginRequest{Email: "ALICE@example.com", LoginAuth: u.loginAuth[:], Device: dev})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if lb.AccountID != b.AccountID || !sameBytes(lb.WrappedAK, b.WrappedAK) {
		t.Fatalf("login bundle differs from the account's")
	}
	devs, err := h.client(token).Devices(bg)
	if err != nil {
		t.Fatalf("new device key: %v", err)
	}
	if len(devs.Devices) != 2 || devs.Devices[1].KeyID != hex.EncodeToString(keyID[:]) || !devs.Devices[1].Current || devs.Devices[0].Current {
		t.Fatalf("devices: %+v", devs.Devices)
	}

	// Wrong login_auth, unknown email: the same 401.
	_, _, dev2 := newDevice()
	_, err = anon.Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: rnd(32), Device: dev2})
	wrongAuth := wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = anon.Login(bg, &api.LoginRequest{Email: "nobody@example.com", LoginAuth: rnd(32), Device: dev2})
	unknown := wantAPIError(t, err, 401, api.CodeUnauthorized)
	if wrongAuth.Message != unknown.Message {
		t.Errorf("login failures differ: %q vs %q", wrongAuth.Message, unknown.Message)
	}
	if !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("client does not map 401 to ErrUnauthorized")
	}
	// The same device key id cannot be enrolled twice.
	_, err = anon.Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: u.loginAuth[:], Device: dev})
	wantAPIError(t, err, 409, api.CodeConflict)

	// Registering the same email (another case) again conflicts.
	_, req := h.registerRequest("alice@EXAMPLE.COM")
	_, err = anon.Register(bg, req)
	wantAPIError(t, err, 409, api.CodeConflict)

	// Malformed registrations are refused with 400 naming the field.
	for name, mod := range map[string]func(r *api.RegisterRequest){
		"email":      func(r *api.RegisterRequest) { r.Email = "not an email" },
		"account id": func(r *api.RegisterRequest) { r.AccountID = "ABCD" },
		"wrapped ak": func(r *api.RegisterRequest) { r.WrappedAK = r.WrappedAK[:73] },
		"ak header":  func(r *api.RegisterRequest) { r.WrappedAK[1] = 2 },
		"sign pub":   func(r *api.RegisterRequest) { r.SignPub = r.SignPub[:31] },
		"salt":       func(r *api.RegisterRequest) { r.KDF.Salt = rnd(8) },
		"kdf t":      func(r *api.RegisterRequest) { r.KDF.T = 0 },
		"device id":  func(r *api.RegisterRequest) { r.Device.KeyID = "0102" },
		"device nm":  func(r *api.RegisterRequest) { r.Device.Name = "bad\nname" },
	} {
		_, req := h.registerRequest(name + "@example.com")
		mod(req)
		_, err := anon.Register(bg, req)
		wantAPIError(t, err, 400, api.CodeBadRequest)
	}
}

func TestLoginParams(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("bob@example.com")
	anon := h.client("")
	p, err := anon.LoginParams(bg, "BOB@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if p.AccountID != hex.EncodeToString(u.accountID) || p.KDF.M != 65536 {
		t.Fatalf("params of a real account: %+v", p)
	}
	// Unknown emails get stable, made-up answers with the production parameters.
	f1, err := anon.LoginParams(bg, "ghost@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := anon.LoginParams(bg, " Ghost@Example.com")
	f3, _ := anon.LoginParams(bg, "other-ghost@example.com")
	if f1.AccountID != f2.AccountID || !sameBytes(f1.KDF.Salt, f2.KDF.Salt) {
		t.Fatalf("made-up params not stable: %+v vs %+v", f1, f2)
	}
	if f1.AccountID == f3.AccountID || sameBytes(f1.KDF.Salt, f3.KDF.Salt) {
		t.Fatalf("two unknown emails got the same params")
	}
	if len(f1.AccountID) != 32 || len(f1.KDF.Salt) != 16 || f1.KDF.T != 3 || f1.KDF.M != 262144 || f1.KDF.P != 4 {
		t.Fatalf("made-up params: %+v", f1)
	}
	// A second server (another secret) makes up other values, so they are not derivable offline.
	h2 := newHarness(t, noRateLimits())
	g1, _ := h2.client("").LoginParams(bg, "ghost@example.com")
	if g1.AccountID == f1.AccountID {
		t.Fatalf("made-up params do not depend on the server secret")
	}
	_, err = anon.LoginParams(bg, "nope")
	wantAPIError(t, err, 400, api.CodeBadRequest)
}

func TestDeviceRevoke(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("carol@example.com")
	keyID, token, dev := newDevice()
	if _, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: u.loginAuth[:], Device: dev}); err != nil {
		t.Fatal(err)
	}
	second := h.client(token)
	if _, err := second.Apps(bg); err != nil {
		t.Fatal(err)
	}
	if err := u.c.RevokeDevice(bg, hex.EncodeToString(keyID[:])); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err := second.Apps(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	err = u.c.RevokeDevice(bg, "0000000000000000")
	wantAPIError(t, err, 404, api.CodeNotFound)
	err = u.c.RevokeDevice(bg, "self!")
	wantAPIError(t, err, 400, api.CodeBadRequest)

	devs, _ := u.c.Devices(bg)
	if devs.Devices[1].RevokedAt == nil || devs.Devices[0].RevokedAt != nil {
		t.Fatalf("devices after revoke: %+v", devs.Devices)
	}
	// The owner sees the attempt with the revoked key.
	audit, _ := u.c.Audit(bg, 50)
	found := false
	for _, e := range audit.Entries {
		if e.Action == "auth" && e.Actor == "device:"+hex.EncodeToString(keyID[:]) && e.Result == api.CodeUnauthorized {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry for the use of a revoked key: %+v", audit.Entries)
	}
	// Revoking oneself works, and takes effect at once.
	if err := u.c.RevokeDevice(bg, "self"); err != nil {
		t.Fatal(err)
	}
	_, err = u.c.Account(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	// A bad token is refused the same way.
	_, err = h.client("ovd_AAAA").Apps(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = h.client("").Apps(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
}

func TestAppsAndEnvs(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("dave@example.com")
	other := h.register("erin@example.com")
	web := u.newApp("web")
	api2 := u.newApp("api")
	u.newEnv(web, "web", "prod")
	u.newEnv(web, "web", "staging")
	list, err := u.c.Apps(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Apps) != 2 || list.Apps[0].Name != "api" || list.Apps[0].AppID != hex.EncodeToString(api2) || len(list.Apps[0].Envs) != 0 ||
		len(list.Apps[1].Envs) != 2 || list.Apps[1].Envs[0].Name != "prod" || list.Apps[1].Envs[0].Epoch != 1 || list.Apps[1].Envs[0].Seq != 0 {
		t.Fatalf("apps: %+v", list.Apps)
	}
	if l, _ := other.c.Apps(bg); len(l.Apps) != 0 {
		t.Fatalf("another account sees apps: %+v", l.Apps)
	}

	_, err = u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "web"})
	wantAPIError(t, err, 409, api.CodeConflict)
	_, err = u.c.CreateEnv(bg, hex.EncodeToString(web), &api.NewEnv{EnvID: hex.EncodeToString(rnd(16)), Name: "prod", Epoch: 1, WrappedEK: wrapped()})
	wantAPIError(t, err, 409, api.CodeConflict)
	_, err = other.c.CreateEnv(bg, hex.EncodeToString(web), &api.NewEnv{EnvID: hex.EncodeToString(rnd(16)), Name: "x", Epoch: 1, WrappedEK: wrapped()})
	wantAPIError(t, err, 404, api.CodeNotFound)
	_, err = u.c.CreateEnv(bg, hex.EncodeToString(rnd(16)), &api.NewEnv{EnvID: hex.EncodeToString(rnd(16)), Name: "x", Epoch: 1, WrappedEK: wrapped()})
	wantAPIError(t, err, 404, api.CodeNotFound)

	bad := []struct {
		name string
		app  api.NewApp
	}{
		{"short id", api.NewApp{AppID: "0011", Name: "x"}},
		{"upper-case id", api.NewApp{AppID: strings.ToUpper(hex.EncodeToString(rnd(16))), Name: "x"}},
		{"empty name", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: ""}},
		{"control char", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "a\x00b"}},
		{"long name", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: strings.Repeat("a", 129)}},
		{"unicode control char", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "a\u0085b"}},
		// The rule of internal/names, the CLI's: 60 CJK characters are 180 bytes; spaces, slashes and a
		// leading "-" or "." are refused; names must be NFC.
		{"60 CJK characters", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: strings.Repeat("設", 60)}},
		{"space", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "my app"}},
		{"slash", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "a/b"}},
		{"leading dash", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "-a"}},
		{"not NFC", api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "e\u0301"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := u.c.CreateApp(bg, &tc.app)
			if ae := wantAPIError(t, err, 400, api.CodeBadRequest); ae.Message == "" {
				t.Error("no message")
			}
		})
	}
	_, err = u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: strings.Repeat("é", 64)}) // 128 bytes
	if err != nil {
		t.Errorf("128-byte name refused: %v", err)
	}
	for name, ne := range map[string]api.NewEnv{
		"short wrap": {EnvID: hex.EncodeToString(rnd(16)), Name: "x", Epoch: 1, WrappedEK: wrapped()[:70]},
		"epoch 0":    {EnvID: hex.EncodeToString(rnd(16)), Name: "x", Epoch: 0, WrappedEK: wrapped()},
		"bad id":     {EnvID: "zz", Name: "x", Epoch: 1, WrappedEK: wrapped()},
		"bad name":   {EnvID: hex.EncodeToString(rnd(16)), Name: "prod env", Epoch: 1, WrappedEK: wrapped()},
	} {
		_, err := u.c.CreateEnv(bg, hex.EncodeToString(web), &ne)
		t.Run(name, func(t *testing.T) { wantAPIError(t, err, 400, api.CodeBadRequest) })
	}
}

func TestCommitAndRead(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("frank@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")

	st, err := u.c.Env(bg, hex.EncodeToString(e.envID))
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != 0 || len(st.Manifest) != 0 || len(st.Records) != 0 || len(st.WrappedEK) != 74 || st.AppName != "web" || st.EnvName != "prod" {
		t.Fatalf("new env state: %+v", st)
	}

	r1 := api.Record{Blind: rnd(16), Version: 1, Record: sealed(100)}
	r2 := api.Record{Blind: rnd(16), Version: 1, Record: sealed(300)}
	d := u.draft(e).putRecord(r1).putRecord(r2)
	if err := u.commit(e, d); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	st, _ = u.c.Env(bg, hex.EncodeToString(e.envID))
	if st.Seq != 1 || len(st.Records) != 2 || st.Epoch != 1 || len(st.ManifestSig) != 64 {
		t.Fatalf("after first commit: seq %d, %d records", st.Seq, len(st.Records))
	}
	m, err := envelope.ParseManifest(st.Manifest)
	if err != nil || m.Seq != 1 || len(m.Entries) != 2 || !ed25519.Verify(u.signPub, st.Manifest, st.ManifestSig) {
		t.Fatalf("stored manifest: %v", err)
	}
	for _, r := range st.Records {
		orig := e.records[string(r.Blind)]
		if !sameBytes(orig.Record, r.Record) || orig.Version != r.Version {
			t.Fatalf("record %x round trip", r.Blind)
		}
	}

	// Update one, delete one, add one.
	r1b := api.Record{Blind: r1.Blind, Version: 2, Record: sealed(80)}
	r3 := api.Record{Blind: rnd(16), Version: 1, Record: sealed(60)}
	if err := u.commit(e, u.draft(e).putRecord(r1b).putRecord(r3).deleteRecord(r2.Blind)); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	st, _ = u.c.Env(bg, hex.EncodeToString(e.envID))
	if st.Seq != 2 || len(st.Records) != 2 {
		t.Fatalf("after second commit: seq %d, %d records", st.Seq, len(st.Records))
	}
	list, _ := u.c.Apps(bg)
	if got := list.Apps[0].Envs[0]; got.Seq != 2 || got.Count != 2 {
		t.Fatalf("env listing after commits: %+v", got)
	}

	// A writer that read seq 1 is stale: 409, and nothing changes.
	stale := u.draft(e)
	stale.expected, stale.seq = 1, 2
	stale.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(50)})
	_, err = u.c.Commit(bg, hex.EncodeToString(e.envID), stale.build())
	wantAPIError(t, err, 409, api.CodeConflict)
	if !errors.Is(err, api.ErrConflict) {
		t.Error("client does not map 409 to ErrConflict")
	}
	if !strings.Contains(h.metricsText(), "ov_server_commit_conflicts_total 1") {
		t.Error("the stale commit is not counted in ov_server_commit_conflicts_total")
	}
	if st2, _ := u.c.Env(bg, hex.EncodeToString(e.envID)); st2.Seq != 2 || len(st2.Records) != 2 {
		t.Fatal("stale commit changed the env")
	}
	// Another account cannot read or write it.
	o := h.register("mallory@example.com")
	_, err = o.c.Env(bg, hex.EncodeToString(e.envID))
	wantAPIError(t, err, 404, api.CodeNotFound)
	_, err = o.c.Commit(bg, hex.EncodeToString(e.envID), u.draft(e).build())
	wantAPIError(t, err, 404, api.CodeNotFound)
}

func TestCommitRacing(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("grace@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	u.putN(e, 3, 64)

	const n = 8
	commits := make([]*api.Commit, n)
	for i := range commits {
		commits[i] = u.draft(e).putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(64)}).build()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = u.c.Commit(bg, hex.EncodeToString(e.envID), commits[i])
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, api.ErrConflict):
		default:
			t.Errorf("racing commit: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d commits won the race, want exactly 1", wins)
	}
	st, _ := u.c.Env(bg, hex.EncodeToString(e.envID))
	if st.Seq != 2 || len(st.Records) != 4 {
		t.Fatalf("after the race: seq %d, %d records", st.Seq, len(st.Records))
	}
}

func TestCommitValidation(t *testing.T) {
	lim := noRateLimits()
	lim.MaxSecrets = 5
	lim.MaxRecordBytes = 4096
	lim.MaxEnvBytes = 8000
	h := newHarness(t, lim)
	u := h.register("heidi@example.com")
	app := u.newApp("web")
	e := u.newEnv(app, "web", "prod")
	other := u.newEnv(app, "web", "staging")
	u.putN(e, 2, 64)
	var stored []byte
	for b := range e.records {
		stored = []byte(b)
		break
	}
	_, evil, _ := ed25519.GenerateKey(rand.Reader)
	rec := func() api.Record { return api.Record{Blind: rnd(16), Version: 1, Record: sealed(64)} }

	cases := []struct {
		name   string
		mod    func(d *draft)
		status int
		code   string
		want   string // in the message
	}{
		{"seq not +1", func(d *draft) { d.seq = d.expected + 2 }, 400, api.CodeBadRequest, "seq"},
		{"hash mismatch", func(d *draft) {
			r := rec()
			d.putRecord(r)
			en := d.entries[string(r.Blind)]
			h := sha256.Sum256([]byte("other"))
			en.RecordHash = h[:]
			d.entries[string(r.Blind)] = en
		}, 400, api.CodeBadRequest, "SHA-256"},
		{"version mismatch", func(d *draft) {
			r := rec()
			d.putRecord(r)
			en := d.entries[string(r.Blind)]
			en.Version = 7
			d.entries[string(r.Blind)] = en
		}, 400, api.CodeBadRequest, "version"},
		{"missing record", func(d *draft) {
			b := rnd(16)
			h := sha256.Sum256(b)
			d.entries[string(b)] = envelope.ManifestEntry{Blind: b, Version: 1, RecordHash: h[:]}
		}, 400, api.CodeBadRequest, "neither stored nor put"},
		{"stored record dropped from manifest", func(d *draft) { delete(d.entries, string(stored)) }, 400, api.CodeBadRequest, "not in the manifest"},
		{"put record not in manifest", func(d *draft) {
			r := rec()
			d.putRecord(r)
			delete(d.entries, string(r.Blind))
		}, 400, api.CodeBadRequest, "not in the manifest"},
		{"wrong env id", func(d *draft) { d.envID = other.envID }, 400, api.CodeBadRequest, "not this environment"},
		{"wrong app id", func(d *draft) { d.appID = rnd(16) }, 400, api.CodeBadRequest, "not this environment"},
		{"wrong account id", func(d *draft) { d.accountID = rnd(16) }, 400, api.CodeBadRequest, "not this environment"},
		{"bad signature", func(d *draft) { d.signer = evil }, 400, api.CodeBadRequest, "signature"},
		{"truncated signature", func(d *draft) { d.sigOverride = rnd(63) }, 400, api.CodeBadRequest, "signature"},
		{"wrong epoch", func(d *draft) { d.epoch = 2 }, 400, api.CodeBadRequest, "epoch"},
		{"garbage manifest", func(d *draft) { d.manifestOverride = []byte("not a manifest") }, 400, api.CodeBadRequest, "manifest"},
		{"bad record header", func(d *draft) {
			r := rec()
			r.Record[0] = 2
			d.putRecord(r)
		}, 400, api.CodeBadRequest, "01 01"},
		{"short record", func(d *draft) { d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(20)}) }, 400, api.CodeBadRequest, "at least"},
		{"record too large", func(d *draft) { d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(5000)}) }, 413, api.CodeTooLarge, "at most"},
		{"environment too large", func(d *draft) {
			d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(4000)})
			d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(4000)})
		}, 413, api.CodeTooLarge, "would hold"},
		{"delete of unknown record", func(d *draft) { d.deleteRecord(rnd(16)) }, 400, api.CodeBadRequest, "not stored"},
		{"blind id too short", func(d *draft) { d.put = append(d.put, api.Record{Blind: rnd(15), Version: 1, Record: sealed(64)}) }, 400, api.CodeBadRequest, "blind id"},
		{"duplicate put", func(d *draft) {
			r := rec()
			d.putRecord(r)
			d.put = append(d.put, r)
		}, 400, api.CodeBadRequest, "twice"},
		{"too many secrets", func(d *draft) {
			for range 4 {
				d.putRecord(rec())
			}
		}, 422, api.CodeTooMany, "at most 5"},
		{"delete with rotate", func(d *draft) {
			d.epoch = 2
			d.rotate = &api.Rotation{Epoch: 2, WrappedEK: wrapped()}
			d.deleteRecord(stored)
		}, 400, api.CodeBadRequest, "rotat"},
		{"rotate to an old epoch", func(d *draft) {
			d.rotate = &api.Rotation{Epoch: 1, WrappedEK: wrapped()}
		}, 400, api.CodeBadRequest, "epoch"},
		{"rotation keeps old records", func(d *draft) {
			d.epoch = 2
			d.rotate = &api.Rotation{Epoch: 2, WrappedEK: wrapped()}
		}, 400, api.CodeBadRequest, "neither stored nor put"},
		{"revoke unknown machine", func(d *draft) { d.revoke = []string{hex.EncodeToString(rnd(16))} }, 404, api.CodeNotFound, "machine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := u.draft(e)
			tc.mod(d)
			_, err := u.c.Commit(bg, hex.EncodeToString(e.envID), d.build())
			ae := wantAPIError(t, err, tc.status, tc.code)
			if !strings.Contains(ae.Message, tc.want) {
				t.Errorf("message %q does not mention %q", ae.Message, tc.want)
			}
			st, _ := u.c.Env(bg, hex.EncodeToString(e.envID))
			if st.Seq != e.seq || len(st.Records) != len(e.records) {
				t.Fatalf("a refused commit changed the env: seq %d, %d records", st.Seq, len(st.Records))
			}
		})
	}
	// After all that, a valid commit still goes through.
	if err := u.commit(e, u.draft(e).putRecord(rec())); err != nil {
		t.Fatalf("valid commit after refusals: %v", err)
	}
}

func TestRotationAndMachineRevocation(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("ivan@example.com")
	app := u.newApp("web")
	e := u.newEnv(app, "web", "prod")
	u.putN(e, 3, 64)
	keep := u.newMachine([]*env{e}, 0)
	drop := u.newMachine([]*env{e}, 0)
	for _, m := range []*machine{keep, drop} {
		if _, err := m.c.Env(bg, hex.EncodeToString(e.envID)); err != nil {
			t.Fatalf("machine before rotation: %v", err)
		}
	}

	newWrap := machineWrap()
	d := u.draft(e)
	d.entries = map[string]envelope.ManifestEntry{}
	d.epoch = 2
	d.rotate = &api.Rotation{Epoch: 2, WrappedEK: wrapped(), MachineWraps: []api.MachineWrap{{
		MachineID: hex.EncodeToString(keep.id[:]), AppID: hex.EncodeToString(app), EnvID: hex.EncodeToString(e.envID), Epoch: 2, Wrap: newWrap}}}
	d.revoke = []string{hex.EncodeToString(drop.id[:])}
	for range 3 {
		d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(64)})
	}
	if err := u.commit(e, d); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	st, err := keep.c.Env(bg, hex.EncodeToString(e.envID))
	if err != nil {
		t.Fatalf("kept machine after rotation: %v", err)
	}
	if st.Epoch != 2 || !sameBytes(st.MachineWrap, newWrap) || len(st.WrappedEK) != 0 || len(st.Records) != 3 {
		t.Fatalf("kept machine's view: epoch %d, wrap ok %v, %d records", st.Epoch, sameBytes(st.MachineWrap, newWrap), len(st.Records))
	}
	for _, r := range st.Records {
		if _, ok := e.records[string(r.Blind)]; !ok {
			t.Fatal("a record of the old epoch survived")
		}
	}
	_, err = drop.c.Env(bg, hex.EncodeToString(e.envID))
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	_, err = drop.c.MachineSelf(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
}

func TestMachineScope(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("judy@example.com")
	other := h.register("ken@example.com")
	app := u.newApp("web")
	prod := u.newEnv(app, "web", "prod")
	staging := u.newEnv(app, "web", "staging")
	u.putN(prod, 2, 64)
	foreign := other.newEnv(other.newApp("web"), "web", "prod")

	scoped := u.newMachine([]*env{prod}, 0)
	st, err := scoped.c.Env(bg, hex.EncodeToString(prod.envID))
	if err != nil {
		t.Fatalf("scoped machine reads its env: %v", err)
	}
	if len(st.MachineWrap) != 106 || len(st.WrappedEK) != 0 || len(st.Records) != 2 {
		t.Fatalf("scoped machine's view: %+v", st)
	}
	_, err = scoped.c.Env(bg, hex.EncodeToString(staging.envID))
	wantAPIError(t, err, 403, api.CodeForbidden)
	_, err = scoped.c.Env(bg, hex.EncodeToString(foreign.envID))
	wantAPIError(t, err, 404, api.CodeNotFound)
	_, err = scoped.c.Apps(bg)
	wantAPIError(t, err, 403, api.CodeForbidden)
	_, err = scoped.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: "x"})
	wantAPIError(t, err, 403, api.CodeForbidden)
	_, err = scoped.c.Commit(bg, hex.EncodeToString(prod.envID), u.draft(prod).build())
	wantAPIError(t, err, 403, api.CodeForbidden)
	_, err = scoped.c.Account(bg)
	wantAPIError(t, err, 403, api.CodeForbidden)
	_, err = u.c.MachineSelf(bg)
	wantAPIError(t, err, 403, api.CodeForbidden)

	self, err := scoped.c.MachineSelf(bg)
	if err != nil {
		t.Fatal(err)
	}
	if self.MachineID != hex.EncodeToString(scoped.id[:]) || self.AccountID != hex.EncodeToString(u.accountID) ||
		!sameBytes(self.Grant, scoped.req.Grant) || !sameBytes(self.Pin.MAC, scoped.req.Pin.MAC) || len(self.AccountWrap) != 0 {
		t.Fatalf("machine self: %+v", self)
	}

	// Account-wide: reaches an env created after it, and lists apps.
	wide := u.newMachine(nil, 0)
	later := u.newEnv(u.newApp("api"), "api", "prod")
	st, err = wide.c.Env(bg, hex.EncodeToString(later.envID))
	if err != nil {
		t.Fatalf("account-wide machine reads a later env: %v", err)
	}
	if len(st.WrappedEK) != 74 || len(st.MachineWrap) != 0 {
		t.Fatalf("account-wide machine's view: %+v", st)
	}
	if l, err := wide.c.Apps(bg); err != nil || len(l.Apps) != 2 {
		t.Fatalf("account-wide machine lists apps: %v", err)
	}
	if self, _ := wide.c.MachineSelf(bg); len(self.AccountWrap) != 106 || self.AKVersion != 1 {
		t.Fatalf("account-wide machine self: %+v", self)
	}
	_, err = wide.c.Env(bg, hex.EncodeToString(foreign.envID))
	wantAPIError(t, err, 404, api.CodeNotFound)

	// last_seen is recorded.
	ml, _ := u.c.Machines(bg)
	for _, m := range ml.Machines {
		if m.LastSeenAt == nil {
			t.Errorf("machine %s: no last_seen", m.MachineID)
		}
	}

	// Re-scope the machine to staging: prod is then out of reach.
	err = u.c.PutMachineWraps(bg, hex.EncodeToString(scoped.id[:]), &api.MachineWraps{Wraps: []api.MachineWrap{
		{AppID: hex.EncodeToString(app), EnvID: hex.EncodeToString(staging.envID), Epoch: 1, Wrap: machineWrap()}}})
	wantAPIError(t, err, 400, api.CodeBadRequest) // its grant does not cover staging

	// Soft revoke: refused at once.
	if err := u.c.RevokeMachine(bg, hex.EncodeToString(scoped.id[:])); err != nil {
		t.Fatal(err)
	}
	_, err = scoped.c.Env(bg, hex.EncodeToString(prod.envID))
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	err = u.c.RevokeMachine(bg, hex.EncodeToString(scoped.id[:]))
	wantAPIError(t, err, 404, api.CodeNotFound)
	err = other.c.RevokeMachine(bg, hex.EncodeToString(wide.id[:]))
	wantAPIError(t, err, 404, api.CodeNotFound)

	// Expiry.
	exp := u.newMachine([]*env{prod}, uint64(time.Now().Add(time.Hour).Unix()))
	if _, err := exp.c.Env(bg, hex.EncodeToString(prod.envID)); err != nil {
		t.Fatalf("machine before expiry: %v", err)
	}
	h.advance(2 * time.Hour)
	_, err = exp.c.Env(bg, hex.EncodeToString(prod.envID))
	if ae := wantAPIError(t, err, 401, api.CodeUnauthorized); !strings.Contains(ae.Message, "expired") {
		t.Errorf("expiry message: %q", ae.Message)
	}
}

func TestMachineRegistrationChecks(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("leo@example.com")
	app := u.newApp("web")
	prod := u.newEnv(app, "web", "prod")
	staging := u.newEnv(app, "web", "staging")
	_, evil, _ := ed25519.GenerateKey(rand.Reader)

	cases := map[string]func(req *api.NewMachine){
		"grant signed by another key": func(req *api.NewMachine) { req.GrantSig = ed25519.Sign(evil, req.Grant) },
		"pin names another key":       func(req *api.NewMachine) { req.Pin.SignPub = rnd(32) },
		"wrap outside the grant": func(req *api.NewMachine) {
			req.Wraps = append(req.Wraps, api.MachineWrap{AppID: hex.EncodeToString(app), EnvID: hex.EncodeToString(staging.envID), Epoch: 1, Wrap: machineWrap()})
		},
		"wraps and account wrap": func(req *api.NewMachine) { req.AccountWrap = machineWrap() },
		"short wrap":             func(req *api.NewMachine) { req.Wraps[0].Wrap = req.Wraps[0].Wrap[:105] },
		"wrong x25519 key":       func(req *api.NewMachine) { req.XPub = rnd(32) },
		"garbage grant": func(req *api.NewMachine) {
			req.Grant = []byte("nope")
			req.GrantSig = ed25519.Sign(u.signPriv, req.Grant)
		},
		"not_after differs":  func(req *api.NewMachine) { na := time.Now().Add(time.Hour); req.NotAfter = &na },
		"label with newline": func(req *api.NewMachine) { req.Label = "a\nb" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			_, req := u.machineRequest([]*env{prod}, 0)
			mod(req)
			wantAPIError(t, u.c.CreateMachine(bg, req), 400, api.CodeBadRequest)
		})
	}
	_, req := u.machineRequest([]*env{prod}, uint64(time.Now().Add(-30*time.Second).Unix()))
	err := u.c.CreateMachine(bg, req)
	if ae := wantAPIError(t, err, 400, api.CodeBadRequest); !strings.Contains(ae.Message, "expired") {
		t.Errorf("expired grant: %q", ae.Message)
	}
	m := u.newMachine([]*env{prod}, 0)
	wantAPIError(t, u.c.CreateMachine(bg, m.req), 409, api.CodeConflict)
}

func TestPasswordChange(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("mia@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	m := u.newMachine([]*env{e}, 0)
	var newAuth [32]byte
	copy(newAuth[:], rnd(32))
	nv := envelope.LoginVerifier(&newAuth)
	change := &api.PasswordChange{OldLoginAuth: rnd(32), KDF: api.KDF{T: 4, M: 131072, P: 4, Salt: rnd(16)},
		WrappedAK: wrapped(), AKVersion: 1, KeyCheck: rnd(32), LoginVerifier: nv[:]}
	wantAPIError(t, u.c.ChangePassword(bg, change), 403, api.CodeForbidden)

	change.OldLoginAuth = u.loginAuth[:]
	if err := u.c.ChangePassword(bg, change); err != nil {
		t.Fatalf("change password: %v", err)
	}
	b, _ := u.c.Account(bg)
	if !sameBytes(b.KDF.Salt, change.KDF.Salt) || b.KDF.T != 4 || !sameBytes(b.WrappedAK, change.WrappedAK) {
		t.Fatalf("account after change: %+v", b)
	}
	if _, err := m.c.MachineSelf(bg); err != nil {
		t.Fatalf("machine after a change that keeps machines: %v", err)
	}
	_, _, dev := newDevice()
	_, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: u.loginAuth[:], Device: dev})
	wantAPIError(t, err, 401, api.CodeUnauthorized)
	if _, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: newAuth[:], Device: dev}); err != nil {
		t.Fatalf("login with the new secrets: %v", err)
	}

	change2 := *change
	change2.OldLoginAuth, change2.RevokeMachines = newAuth[:], true
	if err := u.c.ChangePassword(bg, &change2); err != nil {
		t.Fatal(err)
	}
	_, err = m.c.MachineSelf(bg)
	wantAPIError(t, err, 401, api.CodeUnauthorized)
}

func TestBodyTooLarge(t *testing.T) {
	lim := noRateLimits()
	lim.MaxBodyBytes = 4096
	lim.MaxCommitBytes = 64 << 10
	h := newHarness(t, lim)
	u := h.register("nina@example.com")
	_, err := u.c.CreateApp(bg, &api.NewApp{AppID: hex.EncodeToString(rnd(16)), Name: strings.Repeat("x", 8000)})
	wantAPIError(t, err, 413, api.CodeTooLarge)

	e := u.newEnv(u.newApp("web"), "web", "prod")
	d := u.draft(e)
	for range 40 {
		d.putRecord(api.Record{Blind: rnd(16), Version: 1, Record: sealed(2000)})
	}
	_, err = u.c.Commit(bg, hex.EncodeToString(e.envID), d.build())
	wantAPIError(t, err, 413, api.CodeTooLarge)

	// Without a Content-Length (chunked), the limit still holds.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"app_id":"` + strings.Repeat("a", 10000) + `"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.ts.URL+"/v1/apps", pr)
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversize body: %d, want 413", resp.StatusCode)
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		lim := noRateLimits()
		lim.IPRate = Rate{PerSecond: 0.01, Burst: 3}
		h := newHarness(t, lim)
		anon := h.client("")
		for i := range 3 {
			if _, err := anon.LoginParams(bg, "x@example.com"); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		_, err := anon.LoginParams(bg, "x@example.com")
		ae := wantAPIError(t, err, 429, api.CodeRateLimited)
		if ae.RetryAfter < time.Second || !errors.Is(err, api.ErrRateLimited) {
			t.Fatalf("retry after %v", ae.RetryAfter)
		}
		// Failed authentications draw from the same bucket.
		_, err = h.client("ovd_bad").Apps(bg)
		wantAPIError(t, err, 429, api.CodeRateLimited)
		if body := h.metricsText(); !strings.Contains(body, `ov_server_rate_limited_total{limit="ip"} 2`) {
			t.Errorf("metrics do not count the refusals:\n%s", body)
		}
	})
	t.Run("per key", func(t *testing.T) {
		lim := noRateLimits()
		lim.KeyRate = Rate{PerSecond: 0.01, Burst: 4}
		h := newHarness(t, lim)
		u := h.register("olga@example.com")
		for i := range 4 {
			if _, err := u.c.Apps(bg); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		req, _ := http.NewRequest("GET", h.ts.URL+"/v1/apps", nil)
		req.Header.Set("Authorization", "Bearer "+u.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// Another key is not affected.
		v := h.register("peggy@example.com")
		if _, err := v.c.Apps(bg); err != nil {
			t.Fatalf("another key: %v", err)
		}
	})
	t.Run("per email", func(t *testing.T) {
		lim := noRateLimits()
		lim.LoginRate = Rate{PerSecond: 0.01, Burst: 2}
		h := newHarness(t, lim)
		u := h.register("quinn@example.com")
		for range 2 {
			_, _, dev := newDevice()
			_, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: rnd(32), Device: dev})
			wantAPIError(t, err, 401, api.CodeUnauthorized)
		}
		_, _, dev := newDevice()
		_, err := h.client("").Login(bg, &api.LoginRequest{Email: u.email, LoginAuth: u.loginAuth[:], Device: dev})
		wantAPIError(t, err, 429, api.CodeRateLimited)
	})
}

func TestAuditLog(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("rita@example.com")
	app := u.newApp("web")
	e := u.newEnv(app, "web", "prod")
	u.putN(e, 3, 80)
	m := u.newMachine([]*env{e}, 0)
	if _, err := m.c.Env(bg, hex.EncodeToString(e.envID)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.c.Env(bg, hex.EncodeToString(e.envID)); err != nil {
		t.Fatal(err)
	}
	bad := u.draft(e)
	bad.seq += 5
	u.c.Commit(bg, hex.EncodeToString(e.envID), bad.build())

	list, err := u.c.Audit(bg, 100)
	if err != nil {
		t.Fatal(err)
	}
	dev := "device:" + hex.EncodeToString(u.keyID[:])
	envT := "env:" + hex.EncodeToString(e.envID)
	want := []api.AuditEntry{ // newest first
		{Actor: dev, Action: "env.commit", Target: envT, Result: api.CodeBadRequest},
		{Actor: dev, Action: "env.read", Target: envT, Result: "ok"},
		{Actor: "machine:" + hex.EncodeToString(m.id[:]), Action: "env.read", Target: envT, Result: "ok"},
		{Actor: dev, Action: "machine.create", Target: "machine:" + hex.EncodeToString(m.id[:]), Result: "ok"},
		{Actor: dev, Action: "env.commit", Target: envT, Result: "ok"},
		{Actor: dev, Action: "env.create", Target: envT, Result: "ok"},
		{Actor: dev, Action: "app.create", Target: "app:" + hex.EncodeToString(app), Result: "ok"},
		{Actor: dev, Action: "account.register", Target: "account:" + hex.EncodeToString(u.accountID), Result: "ok"},
	}
	if len(list.Entries) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(list.Entries), len(want), list.Entries)
	}
	for i, w := range want {
		g := list.Entries[i]
		if g.Actor != w.Actor || g.Action != w.Action || g.Target != w.Target || g.Result != w.Result || g.RemoteAddr != "127.0.0.1" || g.Time.IsZero() {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
		if i > 0 && g.ID >= list.Entries[i-1].ID {
			t.Errorf("entries not newest first")
		}
	}
	// Never record bytes, tokens or verifiers, in any encoding.
	var secrets []string
	for _, r := range e.records {
		secrets = append(secrets, hex.EncodeToString(r.Record), base64.StdEncoding.EncodeToString(r.Record), string(r.Record[2:18]))
	}
	secrets = append(secrets, u.token, m.token, hex.EncodeToString(u.loginAuth[:]))
	all, err := h.db.Audit(bg, u.accountID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range all {
		line := strings.Join([]string{en.Actor, en.Action, en.Target, en.RemoteAddr, en.Result}, "|")
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Fatalf("audit entry holds secret material: %q", line)
			}
		}
	}
	// Another account sees none of it.
	o := h.register("sam@example.com")
	ol, _ := o.c.Audit(bg, 100)
	if len(ol.Entries) != 1 || ol.Entries[0].Action != "account.register" {
		t.Fatalf("another account's audit: %+v", ol.Entries)
	}
	_, err = m.c.Audit(bg, 10)
	wantAPIError(t, err, 403, api.CodeForbidden)
}

func TestErrorsAreJSON(t *testing.T) {
	h := newHarness(t, noRateLimits())
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nope", 404},
		{"DELETE", "/v1/apps", 405},
		{"GET", "/v1/envs/xyz", 401},
	} {
		req, _ := http.NewRequest(tc.method, h.ts.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"error":{"code":`) {
			t.Errorf("%s %s: %d %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	u := h.register("tom@example.com")
	_, err := u.c.Env(bg, "xyz")
	wantAPIError(t, err, 400, api.CodeBadRequest)
	get := func(path string) (int, string) {
		resp, err := http.Get(h.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(path); code != 200 {
			t.Errorf("%s: %d", path, code)
		}
	}
	// /metrics is not on the API listener (it is on --metrics-listen only).
	if code, body := get("/metrics"); code != 404 || strings.Contains(body, "ov_server") {
		t.Errorf("/metrics on the API listener: %d %s", code, body)
	}
	metrics := h.metricsText()
	for _, want := range []string{
		`ov_server_http_requests_total{code="404",route="unmatched"} 2`,
		`ov_server_http_requests_total{code="201",route="POST /v1/register"} 1`,
		`ov_server_http_requests_total{code="400",route="GET /v1/envs/{env_id}"} 1`,
		`ov_server_http_request_duration_seconds_count{route="GET /healthz"} 1`,
		`ov_server_http_request_duration_seconds_bucket{route="GET /healthz",le="+Inf"} 1`,
		"# TYPE ov_server_http_requests_total counter",
		"# TYPE ov_server_http_request_duration_seconds histogram",
		"go_goroutines ", "process_cpu_seconds_total ", poolMetric(h.db),
		"ov_server_commit_conflicts_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	// With the database gone, /readyz says so while /healthz still answers.
	h.db.Close()
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "unavailable") {
		t.Errorf("readyz with a closed database: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz with a closed database: %d", code)
	}
}

func TestRegistrationDisabled(t *testing.T) {
	db := newHarness(t, noRateLimits()).db
	srv, err := New(bg, Config{Store: db, Limits: noRateLimits(), DisableRegistration: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, srv: srv}
	h.ts = newTestServer(t, srv)
	_, req := h.registerRequest("uma@example.com")
	_, err = h.client("").Register(bg, req)
	wantAPIError(t, err, 403, api.CodeRegistrationClosed)
}

// poolMetric is a metric line of the store's connection pool: database/sql's for SQLite, the
// server's own for PostgreSQL's pool.
func poolMetric(st store.Store) string {
	if _, ok := st.(poolStatser); ok {
		return `ov_server_db_pool_connections{db_name="pool",state="idle"}`
	}
	return `go_sql_open_connections{db_name="reader"}`
}
