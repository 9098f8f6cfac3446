// SPDX-License-Identifier: Apache-2.0

package server

import (
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
)

func (u *user) signed(raw []byte) *api.Signed {
	return &api.Signed{Raw: raw, Sig: ed25519.Sign(u.signPriv, raw)}
}

func (u *user) revocations(seq uint64, ids ...[]byte) []byte {
	var l *envelope.Revocations
	l = l.Add(u.accountID, 1767225600, ids...)
	l.Seq = seq
	return l.Marshal()
}

func (u *user) access(e *env, epoch uint32, version uint64) []byte {
	a := &envelope.EnvAccess{AccountID: u.accountID, AppID: e.appID, EnvID: e.envID, Epoch: epoch, EKID: rnd(16), Version: version}
	return a.Marshal()
}

// The server keeps the revocation list and the allowed sets as signed, only replaces them with a
// higher version, and refuses what the account did not sign.
func TestSignedStatements(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("a@example.com")
	other := h.register("b@example.com")
	_, err := u.c.Revocations(bg)
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)

	two := u.signed(u.revocations(2, rnd(16)))
	if err := u.c.PutRevocations(bg, two); err != nil {
		t.Fatal(err)
	}
	got, err := u.c.Revocations(bg)
	if err != nil || !sameBytes(got.Raw, two.Raw) || !sameBytes(got.Sig, two.Sig) {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	wantAPIError(t, u.c.PutRevocations(bg, u.signed(u.revocations(1))), http.StatusConflict, api.CodeConflict)
	wantAPIError(t, u.c.PutRevocations(bg, u.signed(u.revocations(2))), http.StatusConflict, api.CodeConflict)
	bad := u.signed(u.revocations(3))
	bad.Sig[0] ^= 1
	wantAPIError(t, u.c.PutRevocations(bg, bad), http.StatusBadRequest, api.CodeBadRequest)
	wantAPIError(t, u.c.PutRevocations(bg, other.signed(u.revocations(3))), http.StatusBadRequest, api.CodeBadRequest)
	wantAPIError(t, other.c.PutRevocations(bg, other.signed(u.revocations(3))), http.StatusBadRequest, api.CodeBadRequest)
	wantAPIError(t, u.c.PutRevocations(bg, u.signed([]byte("not a list"))), http.StatusBadRequest, api.CodeBadRequest)
	if _, err := other.c.Revocations(bg); err == nil {
		t.Fatal("another account reads this account's list")
	}

	e := u.newEnv(u.newApp("web"), "web", "prod")
	envID := hex.EncodeToString(e.envID)
	if err := u.c.PutEnvAccess(bg, envID, 1, u.signed(u.access(e, 1, 5))); err != nil {
		t.Fatal(err)
	}
	// The next epoch (before a rotation commits it) is accepted; any other is not.
	if err := u.c.PutEnvAccess(bg, envID, 2, u.signed(u.access(e, 2, 1))); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, u.c.PutEnvAccess(bg, envID, 3, u.signed(u.access(e, 3, 1))), http.StatusConflict, api.CodeConflict)
	wantAPIError(t, u.c.PutEnvAccess(bg, envID, 1, u.signed(u.access(e, 1, 5))), http.StatusConflict, api.CodeConflict)
	wantAPIError(t, u.c.PutEnvAccess(bg, envID, 2, u.signed(u.access(e, 1, 6))), http.StatusBadRequest, api.CodeBadRequest)
	wantAPIError(t, other.c.PutEnvAccess(bg, envID, 1, other.signed(u.access(e, 1, 6))), http.StatusNotFound, api.CodeNotFound)
	// Every reader of the env gets the current epoch's set with it.
	m := u.newMachine([]*env{e}, 0)
	st, err := m.c.Env(bg, envID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Access) == 0 || len(st.AccessSig) != ed25519.SignatureSize {
		t.Fatal("a machine read the env without its allowed set")
	}
	if a, err := envelope.ParseEnvAccess(st.Access); err != nil || a.Epoch != 1 || a.Version != 5 {
		t.Fatalf("served set: %+v, %v", a, err)
	}
}

// A v2 grant says whether the key is account-wide; the request must agree.
func TestCreateMachineGrantV2Kind(t *testing.T) {
	h := newHarness(t, noRateLimits())
	u := h.register("a@example.com")
	e := u.newEnv(u.newApp("web"), "web", "prod")
	_, req := u.machineRequest([]*env{e}, 0)
	g, err := envelope.ParseGrant(req.Grant)
	if err != nil {
		t.Fatal(err)
	}
	g.Version, g.Flags = envelope.GrantV2, envelope.GrantAccountWide
	req.Grant = g.Marshal()
	req.GrantSig = ed25519.Sign(u.signPriv, req.Grant)
	wantAPIError(t, u.c.CreateMachine(bg, req), http.StatusBadRequest, api.CodeBadRequest)
	g.Flags = 0
	req.Grant = g.Marshal()
	req.GrantSig = ed25519.Sign(u.signPriv, req.Grant)
	if err := u.c.CreateMachine(bg, req); err != nil {
		t.Fatal(err)
	}
}
