// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"
	"testing"

	"github.com/opaquevault/opaquevault/internal/vault"
)

// TestNewPasswordChange: the request re-wraps the same account key under the new password's keys,
// proves the old password, and the old password's keys cannot open the new wrap.
func TestNewPasswordChange(t *testing.T) {
	vault.UseTestKDF()
	params := func() vault.KDFParams {
		p := vault.NewKDFParams()
		p.Time, p.MemoryKiB, p.Threads = 1, 64, 1
		return p
	}
	reg, err := NewAccount("a@example.com", []byte("correct horse battery"), params(), NewDevice("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.ASK.Wipe()
	defer reg.Account.Wipe()
	oldPK, err := PasswordKeys([]byte("correct horse battery"), reg.ASK, reg.Request.AccountID, reg.Request.KDF)
	if err != nil {
		t.Fatal(err)
	}
	defer oldPK.Wipe()
	newParams := params()
	req, err := NewPasswordChange(oldPK, reg.Account, reg.ASK, []byte("staple tuna orbit"), newParams, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.OldLoginAuth, oldPK.LoginAuth().Bytes()) || !req.RevokeMachines || req.AKVersion != reg.Account.AKVersion {
		t.Errorf("request = %+v", req)
	}
	newPK, err := PasswordKeys([]byte("staple tuna orbit"), reg.ASK, reg.Request.AccountID, req.KDF)
	if err != nil {
		t.Fatal(err)
	}
	defer newPK.Wipe()
	if lv := newPK.LoginVerifier(); !bytes.Equal(req.LoginVerifier, lv[:]) {
		t.Error("login verifier is not the new password's")
	}
	ak, err := newPK.UnwrapAccountKey(req.KeyCheck, req.WrappedAK, req.AKVersion)
	if err != nil {
		t.Fatalf("the new password cannot open the new wrap: %v", err)
	}
	defer ak.Wipe()
	if !ak.Equal(&reg.Account.AK.Key) {
		t.Error("the new wrap holds another account key")
	}
	if _, err := oldPK.UnwrapAccountKey(req.KeyCheck, req.WrappedAK, req.AKVersion); err == nil {
		t.Error("the old password opens the new wrap")
	}
}
