// SPDX-License-Identifier: Apache-2.0

package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// Production Argon2id parameters (crypto.md §1.1), answered for unknown emails.
const (
	defaultKDFT = 3
	defaultKDFM = 262144
	defaultKDFP = 4
)

func bundle(a *store.Account) *api.AccountBundle {
	return &api.AccountBundle{
		AccountID: hexID(a.ID), Email: a.Email,
		KDF:       api.KDF{T: a.KDF.T, M: a.KDF.M, P: a.KDF.P, Salt: a.KDF.Salt},
		WrappedAK: a.WrappedAK, AKVersion: a.AKVersion, KeyCheck: a.KeyCheck,
		WrappedSignSeed: a.WrappedSignSeed, SignPub: a.SignPub,
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// allowLogin charges one attempt to an email's login bucket.
func (s *Server) allowLogin(email string) error {
	if ok, wait := s.loginLim.allow("email:"+email, s.now()); !ok {
		s.metrics.limited("login")
		return rateLimited(wait)
	}
	return nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if s.registration == RegistrationClosed {
		return s.checkRegistration("")
	}
	var req api.RegisterRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.checkRegistration(req.Invite); err != nil {
		return err
	}
	email, err := checkEmail(req.Email)
	if err != nil {
		return err
	}
	id, err := parseID("account_id", req.AccountID, envelope.IDLen)
	if err != nil {
		return err
	}
	if err := checkKDF(req.KDF); err != nil {
		return err
	}
	if err := checkWrappedKey("wrapped_ak", req.WrappedAK); err != nil {
		return err
	}
	if err := checkLen("key_check", req.KeyCheck, 32); err != nil {
		return err
	}
	if err := checkLen("login_verifier", req.LoginVerifier, verifierLen); err != nil {
		return err
	}
	if err := checkWrappedKey("wrapped_sign_seed", req.WrappedSignSeed); err != nil {
		return err
	}
	if err := checkLen("sign_pub", req.SignPub, publicKeyLen); err != nil {
		return err
	}
	keyID, err := checkDevice(req.Device)
	if err != nil {
		return err
	}
	now := s.now()
	a := &store.Account{
		ID: id, Email: email, KDF: store.KDF{T: req.KDF.T, M: req.KDF.M, P: req.KDF.P, Salt: req.KDF.Salt},
		WrappedAK: req.WrappedAK, AKVersion: req.AKVersion, KeyCheck: req.KeyCheck, LoginVerifier: req.LoginVerifier,
		WrappedSignSeed: req.WrappedSignSeed, SignPub: req.SignPub, CreatedAt: now,
	}
	d := &store.Device{KeyID: keyID, AccountID: id, Verifier: req.Device.Verifier, Name: req.Device.Name, CreatedAt: now}
	rc.target = "account:" + req.AccountID
	var err2 error
	if s.registration == RegistrationInvite {
		err2 = s.st.CreateAccountInvited(r.Context(), a, d, InviteVerifier(req.Invite))
		if errors.Is(err2, store.ErrNotFound) {
			return errorf(http.StatusForbidden, api.CodeInviteInvalid, "the invite code is unknown, already used, revoked or expired")
		}
	} else {
		err2 = s.st.CreateAccount(r.Context(), a, d)
	}
	if err := err2; err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("register: email, account id or device key id already registered")
		}
		return err
	}
	rc.accountID, rc.claimed = id, "device:"+req.Device.KeyID
	a.Email = store.NormalizeEmail(a.Email)
	writeJSON(w, http.StatusCreated, bundle(a))
	return nil
}

func (s *Server) loginParams(w http.ResponseWriter, r *http.Request, _ *reqCtx) error {
	var req api.LoginParamsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	email, err := checkEmail(req.Email)
	if err != nil {
		return err
	}
	if err := s.allowLogin(email); err != nil {
		return err
	}
	a, err := s.st.AccountByEmail(r.Context(), email)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, &api.LoginParams{
			AccountID: hexID(a.ID),
			KDF:       api.KDF{T: a.KDF.T, M: a.KDF.M, P: a.KDF.P, Salt: a.KDF.Salt},
		})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusOK, s.fakeLoginParams(email))
	default:
		return err
	}
	return nil
}

// fakeLoginParams answers for an email without an account: an account id and salt that are stable
// (HMAC of the email under the server secret) and the production KDF parameters, so the answer
// does not tell whether the account exists.
func (s *Server) fakeLoginParams(email string) *api.LoginParams {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte("ov-server/v1/fake-login-params\x00"))
	mac.Write([]byte(email))
	sum := mac.Sum(nil)
	return &api.LoginParams{
		AccountID: hexID(sum[:16]),
		KDF:       api.KDF{T: defaultKDFT, M: defaultKDFM, P: defaultKDFP, Salt: sum[16:32]},
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req api.LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	email, err := checkEmail(req.Email)
	if err != nil {
		return err
	}
	if err := checkLen("login_auth", req.LoginAuth, envelope.SecretLen); err != nil {
		return err
	}
	keyID, err := checkDevice(req.Device)
	if err != nil {
		return err
	}
	if err := s.allowLogin(email); err != nil {
		return err
	}
	var auth [envelope.SecretLen]byte
	copy(auth[:], req.LoginAuth)
	clear(req.LoginAuth)
	verifier := envelope.LoginVerifier(&auth)
	clear(auth[:])

	const refused = "login: email, password or Account Secret Key not recognized"
	a, err := s.st.AccountByEmail(r.Context(), email)
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized(refused)
	}
	if err != nil {
		return err
	}
	rc.accountID, rc.target = a.ID, "device:"+req.Device.KeyID
	if !envelope.VerifierMatches(verifier, a.LoginVerifier) {
		return unauthorized(refused)
	}
	d := &store.Device{KeyID: keyID, AccountID: a.ID, Verifier: req.Device.Verifier, Name: req.Device.Name, CreatedAt: s.now()}
	if err := s.withQuota(r.Context(), a.ID, quotaCheck{devices: 1}, func() error { return s.st.AddDevice(r.Context(), d) }); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("login: device key id %s already enrolled", req.Device.KeyID)
		}
		return err
	}
	rc.claimed = "device:" + req.Device.KeyID
	writeJSON(w, http.StatusOK, bundle(a))
	return nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	a, err := s.loadAccount(r.Context(), rc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, bundle(a))
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req api.PasswordChange
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkLen("old_login_auth", req.OldLoginAuth, envelope.SecretLen); err != nil {
		return err
	}
	if err := checkKDF(req.KDF); err != nil {
		return err
	}
	if err := checkWrappedKey("wrapped_ak", req.WrappedAK); err != nil {
		return err
	}
	if err := checkLen("key_check", req.KeyCheck, 32); err != nil {
		return err
	}
	if err := checkLen("login_verifier", req.LoginVerifier, verifierLen); err != nil {
		return err
	}
	a, err := s.loadAccount(r.Context(), rc)
	if err != nil {
		return err
	}
	rc.target = "account:" + hexID(a.ID)
	if req.AKVersion < a.AKVersion {
		return badRequest("change password: ak_version %d is below the account's %d", req.AKVersion, a.AKVersion)
	}
	// A stolen device key must not be enough to guess the old secrets quickly.
	if err := s.allowLogin(a.Email); err != nil {
		return err
	}
	var old [envelope.SecretLen]byte
	copy(old[:], req.OldLoginAuth)
	clear(req.OldLoginAuth)
	oldVerifier := envelope.LoginVerifier(&old)
	clear(old[:])
	if !envelope.VerifierMatches(oldVerifier, a.LoginVerifier) {
		return forbidden("change password: current password or Account Secret Key is wrong")
	}
	err = s.st.ChangePassword(r.Context(), &store.PasswordChange{
		AccountID: a.ID, OldLoginVerifier: a.LoginVerifier,
		KDF:       store.KDF{T: req.KDF.T, M: req.KDF.M, P: req.KDF.P, Salt: req.KDF.Salt},
		WrappedAK: req.WrappedAK, AKVersion: req.AKVersion, KeyCheck: req.KeyCheck, LoginVerifier: req.LoginVerifier,
		RevokeMachines: req.RevokeMachines, At: s.now(),
	})
	if errors.Is(err, store.ErrConflict) {
		return conflict("change password: the password was changed meanwhile")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := s.st.Devices(r.Context(), rc.accountID)
	if err != nil {
		return err
	}
	out := api.DeviceList{Devices: make([]api.Device, 0, len(list))}
	for _, d := range list {
		out.Devices = append(out.Devices, api.Device{
			KeyID: hexID(d.KeyID), Name: d.Name, CreatedAt: d.CreatedAt,
			LastUsedAt: timePtr(d.LastUsedAt), RevokedAt: timePtr(d.RevokedAt),
			Current: hexID(d.KeyID) == hexID(rc.p.device.KeyID),
		})
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	keyID := rc.p.device.KeyID
	if v := r.PathValue("key_id"); v != "self" {
		var err error
		if keyID, err = parseID("key_id", v, envelope.APIKeyIDLen); err != nil {
			return err
		}
	}
	rc.target = "device:" + hexID(keyID)
	if err := s.st.RevokeDevice(r.Context(), rc.accountID, keyID, s.now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("revoke device: key %s not found", hexID(keyID))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	limit := 100
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return badRequest("limit: want a positive integer")
		}
		limit = min(n, maxAuditLimit)
	}
	s.auditor.sync() // this instance's queued entries first
	list, err := s.auditPage(r, rc.accountID, limit)
	if err != nil {
		return err
	}
	out := api.AuditList{Entries: make([]api.AuditEntry, 0, len(list))}
	for _, e := range list {
		out.Entries = append(out.Entries, api.AuditEntry{
			ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, RemoteAddr: e.RemoteAddr, Result: e.Result,
		})
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}
