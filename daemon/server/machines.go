// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

func machineInfo(m *store.Machine) api.Machine {
	return api.Machine{
		MachineID: hexID(m.ID), Label: m.Label, XPub: m.XPub, Grant: m.Grant, GrantSig: m.GrantSig,
		AccountWide: m.AccountWide(), CreatedAt: m.CreatedAt, NotAfter: timePtr(m.NotAfter), LastSeenAt: timePtr(m.LastSeenAt),
	}
}

func (s *Server) createMachine(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	var req api.NewMachine
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := parseID("machine_id", req.MachineID, envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "machine:" + req.MachineID
	for _, c := range []struct {
		field string
		b     []byte
		n     int
	}{
		{"verifier", req.Verifier, verifierLen},
		{"x25519_pub", req.XPub, publicKeyLen},
		{"grant_sig", req.GrantSig, signatureLen},
		{"pin: sign_pub", req.Pin.SignPub, publicKeyLen},
		{"pin: mac", req.Pin.MAC, 32},
	} {
		if err := checkLen(c.field, c.b, c.n); err != nil {
			return err
		}
	}
	if len(req.Grant) == 0 || len(req.Grant) > maxGrantLen {
		return badRequest("grant: %d bytes, want 1 to %d", len(req.Grant), maxGrantLen)
	}
	if err := checkText("label", req.Label, maxLabelLen, true); err != nil {
		return err
	}
	a, err := s.loadAccount(ctx, rc)
	if err != nil {
		return err
	}
	if !bytes.Equal(req.Pin.SignPub, a.SignPub) {
		return badRequest("create machine: pin: sign_pub is not the account's signing key")
	}
	if !ed25519.Verify(ed25519.PublicKey(a.SignPub), req.Grant, req.GrantSig) {
		return badRequest("create machine: grant signature does not verify under the account signing key")
	}
	g, err := envelope.ParseGrant(req.Grant)
	if err != nil {
		return badRequest("create machine: grant: %v", err)
	}
	if !bytes.Equal(g.AccountID, a.ID) || !bytes.Equal(g.MachineID, id) || !bytes.Equal(g.MachinePub, req.XPub) {
		return badRequest("create machine: grant names another account, machine id or public key")
	}
	var notAfter time.Time
	if g.NotAfter != 0 {
		if g.NotAfter > maxInt64/2 {
			return badRequest("create machine: grant not_after %d out of range", g.NotAfter)
		}
		notAfter = time.Unix(int64(g.NotAfter), 0).UTC()
	}
	if req.NotAfter != nil && (notAfter.IsZero() || req.NotAfter.Unix() != notAfter.Unix()) {
		return badRequest("create machine: not_after differs from the grant's")
	}
	if !notAfter.IsZero() && !notAfter.After(s.now()) {
		return badRequest("create machine: the grant expired at %s", notAfter.Format(time.RFC3339))
	}
	wide := len(req.AccountWrap) > 0
	if wide == (len(req.Wraps) > 0) {
		return badRequest("create machine: want either wraps (scoped key) or account_wrap (account-wide key)")
	}
	if wide != g.AccountWide() {
		return badRequest("create machine: the signed grant says account-wide %t, the request %t", g.AccountWide(), wide)
	}
	m := &store.Machine{
		ID: id, AccountID: a.ID, Verifier: req.Verifier, XPub: req.XPub, Grant: req.Grant, GrantSig: req.GrantSig,
		PinSignPub: req.Pin.SignPub, PinMAC: req.Pin.MAC, NotAfter: notAfter, Label: req.Label, CreatedAt: s.now(),
	}
	var wraps []store.MachineWrap
	if wide {
		if err := checkMachineWrap("account_wrap", req.AccountWrap); err != nil {
			return err
		}
		if req.AKVersion != a.AKVersion {
			return badRequest("create machine: account_wrap is for ak_version %d, the account is at %d", req.AKVersion, a.AKVersion)
		}
		m.AccountWrap, m.AKVersion = req.AccountWrap, req.AKVersion
	} else if wraps, err = s.checkWraps(ctx, rc, id, g, req.Wraps); err != nil {
		return err
	}
	switch err := s.withQuota(ctx, a.ID, quotaCheck{machines: 1}, func() error { return s.st.CreateMachine(ctx, m, wraps) }); {
	case errors.Is(err, store.ErrExists):
		return conflict("create machine: %s already registered", req.MachineID)
	case errors.Is(err, store.ErrNotFound):
		return notFound("create machine: an environment of its wraps no longer exists")
	case err != nil:
		return err
	}
	out := machineInfo(m)
	writeJSON(w, http.StatusCreated, &out)
	return nil
}

// checkWraps checks the environment wraps of a scoped machine: each for an environment of the
// account, at its current epoch, and covered by the machine's signed grant.
func (s *Server) checkWraps(ctx context.Context, rc *reqCtx, machineID []byte, g *envelope.Grant, in []api.MachineWrap) ([]store.MachineWrap, error) {
	out := make([]store.MachineWrap, 0, len(in))
	seen := map[string]bool{}
	for i, w := range in {
		if w.MachineID != "" && w.MachineID != hexID(machineID) {
			return nil, badRequest("wraps[%d]: for machine %s, not %s", i, w.MachineID, hexID(machineID))
		}
		appID, err := parseID("wraps: app_id", w.AppID, envelope.IDLen)
		if err != nil {
			return nil, err
		}
		envID, err := parseID("wraps: env_id", w.EnvID, envelope.IDLen)
		if err != nil {
			return nil, err
		}
		if seen[w.EnvID] {
			return nil, badRequest("wraps[%d]: env %s listed twice", i, w.EnvID)
		}
		seen[w.EnvID] = true
		if err := checkMachineWrap("wraps: wrap", w.Wrap); err != nil {
			return nil, err
		}
		v, err := s.st.ReadEnv(ctx, envID, store.ReadOptions{})
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v.Env.AccountID, rc.accountID) {
			return nil, notFound("wraps[%d]: env %s not found", i, w.EnvID)
		}
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(v.Env.AppID, appID) {
			return nil, badRequest("wraps[%d]: env %s belongs to another app", i, w.EnvID)
		}
		if w.Epoch != v.Env.Epoch {
			return nil, conflict("wraps[%d]: env %s is at epoch %d, the wrap is for %d", i, w.EnvID, v.Env.Epoch, w.Epoch)
		}
		covered := false
		for _, sc := range g.Scopes {
			if bytes.Equal(sc.AppID, appID) && bytes.Equal(sc.EnvID, envID) {
				covered = true
			}
		}
		if !covered {
			return nil, badRequest("wraps[%d]: the grant does not cover env %s", i, w.EnvID)
		}
		out = append(out, store.MachineWrap{MachineID: machineID, AppID: appID, EnvID: envID, Epoch: w.Epoch, Wrap: w.Wrap})
	}
	return out, nil
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := s.st.Machines(r.Context(), rc.accountID)
	if err != nil {
		return err
	}
	out := api.MachineList{Machines: make([]api.Machine, 0, len(list))}
	for i := range list {
		out.Machines = append(out.Machines, machineInfo(&list[i]))
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

func (s *Server) revokeMachine(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, err := parseID("machine_id", r.PathValue("machine_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "machine:" + hexID(id)
	if err := s.st.DeleteMachine(r.Context(), rc.accountID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("revoke machine: %s not found", hexID(id))
		}
		return err
	}
	s.forget(store.Change{Kind: store.ChangeMachine, ID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putMachineWraps(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	id, err := parseID("machine_id", r.PathValue("machine_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "machine:" + hexID(id)
	var req api.MachineWraps
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := s.st.Machine(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(m.AccountID, rc.accountID) {
		return notFound("replace machine wraps: %s not found", hexID(id))
	}
	if err != nil {
		return err
	}
	if m.AccountWide() {
		return badRequest("replace machine wraps: %s is account-wide and takes no environment wraps", hexID(id))
	}
	g, err := envelope.ParseGrant(m.Grant)
	if err != nil {
		return badRequest("replace machine wraps: stored grant: %v", err)
	}
	wraps, err := s.checkWraps(ctx, rc, id, g, req.Wraps)
	if err != nil {
		return err
	}
	if err := s.st.ReplaceMachineWraps(ctx, rc.accountID, id, wraps); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("replace machine wraps: %s or an environment no longer exists", hexID(id))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) machineSelf(w http.ResponseWriter, _ *http.Request, rc *reqCtx) error {
	m := rc.p.machine
	out := &api.MachineSelf{
		AccountID: hexID(m.AccountID), MachineID: hexID(m.ID),
		Pin:   api.MachinePin{SignPub: m.PinSignPub, MAC: m.PinMAC},
		Grant: m.Grant, GrantSig: m.GrantSig,
	}
	if m.AccountWide() {
		out.AccountWrap, out.AKVersion = m.AccountWrap, m.AKVersion
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
