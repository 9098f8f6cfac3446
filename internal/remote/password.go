// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"bytes"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/vault"
)

// NewPasswordChange derives the keys of newPassword (with ask, the account id and params) and builds
// the request that re-wraps acct's account key under them: only that wrap changes, every other key
// stays. oldPK, the keys of the current password, proves the change to the server. revokeMachines
// asks the server to refuse every machine key of the account in the same step (sign the revocation
// first with [Vault.Revoke], so that no later rotation re-wraps for them).
func NewPasswordChange(oldPK *vault.PasswordKeys, acct *Account, ask *vault.AccountSecretKey, newPassword []byte, params vault.KDFParams, revokeMachines bool) (*api.PasswordChange, error) {
	newPK, err := vault.DerivePasswordKeys(newPassword, ask, acct.ID, params)
	if err != nil {
		return nil, err
	}
	defer newPK.Wipe()
	kc, lv := newPK.KeyCheck(), newPK.LoginVerifier()
	return &api.PasswordChange{
		OldLoginAuth: bytes.Clone(oldPK.LoginAuth().Bytes()), KDF: KDFToWire(params),
		WrappedAK: newPK.WrapAccountKey(acct.AK, acct.AKVersion), AKVersion: acct.AKVersion,
		KeyCheck: kc[:], LoginVerifier: lv[:], RevokeMachines: revokeMachines,
	}, nil
}
