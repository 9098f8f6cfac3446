// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Statements signed by the account that the server keeps and serves (crypto.md §2.8): the
// machine revocation list and the allowed set of each environment epoch. The server checks what is
// public (the signature under the account's signing key, the ids, a growing version) only to refuse
// garbage early; clients verify everything again and keep their own floors.

const (
	kindRevocations = "revocations"
	kindEnvAccess   = store.EnvAccessKind
	maxSignedLen    = 1 << 20
)

func envAccessKey(envID []byte, epoch uint32) string { return store.EnvAccessKey(envID, epoch) }

func (s *Server) decodeSigned(r *http.Request, rc *reqCtx) (*api.Signed, *store.Account, error) {
	var req api.Signed
	if err := decode(r, &req); err != nil {
		return nil, nil, err
	}
	if len(req.Raw) == 0 || len(req.Raw) > maxSignedLen {
		return nil, nil, badRequest("raw: %d bytes, want 1 to %d", len(req.Raw), maxSignedLen)
	}
	if err := checkLen("sig", req.Sig, signatureLen); err != nil {
		return nil, nil, err
	}
	a, err := s.loadAccount(r.Context(), rc)
	if err != nil {
		return nil, nil, err
	}
	if !ed25519.Verify(ed25519.PublicKey(a.SignPub), req.Raw, req.Sig) {
		return nil, nil, badRequest("signature does not verify under the account signing key")
	}
	return &req, a, nil
}

func (s *Server) putSigned(w http.ResponseWriter, r *http.Request, o *store.SignedObject) error {
	if o.Version > maxInt64 {
		return badRequest("version %d out of range", o.Version)
	}
	switch err := s.st.PutSigned(r.Context(), o); {
	case errors.Is(err, store.ErrConflict):
		return conflict("%s: version %d is not above the stored one", o.Kind, o.Version)
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getRevocations(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	o, err := s.st.Signed(r.Context(), rc.accountID, kindRevocations, "")
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no machine key was ever revoked")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &api.Signed{Raw: o.Raw, Sig: o.Sig})
	return nil
}

func (s *Server) putRevocations(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	req, a, err := s.decodeSigned(r, rc)
	if err != nil {
		return err
	}
	l, err := envelope.ParseRevocations(req.Raw)
	if err != nil {
		return badRequest("revocations: %v", err)
	}
	if !bytes.Equal(l.AccountID, a.ID) {
		return badRequest("revocations: for another account")
	}
	rc.target = fmt.Sprintf("revocations:%d", l.Seq)
	return s.putSigned(w, r, &store.SignedObject{AccountID: a.ID, Kind: kindRevocations, Version: l.Seq, Raw: req.Raw, Sig: req.Sig, UpdatedAt: s.now()})
}

func (s *Server) putEnvAccess(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	envID, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	epoch, err := strconv.ParseUint(r.PathValue("epoch"), 10, 32)
	if err != nil {
		return badRequest("epoch %q: want a number", r.PathValue("epoch"))
	}
	rc.target = "env:" + hexID(envID)
	req, a, err := s.decodeSigned(r, rc)
	if err != nil {
		return err
	}
	v, err := s.st.ReadEnv(r.Context(), envID, store.ReadOptions{})
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v.Env.AccountID, a.ID) {
		return notFound("env access: env %s not found", hexID(envID))
	}
	if err != nil {
		return err
	}
	acc, err := envelope.ParseEnvAccess(req.Raw)
	if err != nil {
		return badRequest("env access: %v", err)
	}
	if !bytes.Equal(acc.AccountID, a.ID) || !bytes.Equal(acc.AppID, v.Env.AppID) || !bytes.Equal(acc.EnvID, envID) || uint64(acc.Epoch) != epoch {
		return badRequest("env access: for another account, app, env or epoch")
	}
	// The current epoch, or the next one, stored just before the rotation that creates it.
	if acc.Epoch != v.Env.Epoch && acc.Epoch != v.Env.Epoch+1 {
		return conflict("env access: env %s is at epoch %d, not %d", hexID(envID), v.Env.Epoch, acc.Epoch)
	}
	return s.putSigned(w, r, &store.SignedObject{AccountID: a.ID, Kind: kindEnvAccess, Key: envAccessKey(envID, acc.Epoch), Version: acc.Version, Raw: req.Raw, Sig: req.Sig, UpdatedAt: s.now()})
}
