// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
	"github.com/opaquevault/opaquevault/internal/envelope"
	"github.com/opaquevault/opaquevault/internal/store"
)

// readAction reports whether an audited action only reads: its entry is batched, not awaited.
func readAction(action string) bool {
	switch action {
	case "env.read", "env.history", "env.history.read":
		return true
	}
	return false
}

// checkChain refuses a commit that would break the environment's manifest chain (crypto.md
// §1.6.1): a chained manifest must name the SHA-256 of the stored manifest (zero for the first),
// and once an environment is chained an unchained manifest may not follow. Clients verify the
// chain themselves; the server refuses early so that an honest history always verifies.
func checkChain(env *store.Env, m *envelope.Manifest) error {
	if m.Chained() {
		want := make([]byte, sha256.Size)
		if env.Seq > 0 {
			h := sha256.Sum256(env.Manifest)
			want = h[:]
		}
		if !bytes.Equal(m.Prev, want) {
			return badRequest("commit: manifest does not name the hash of seq %d's manifest as its predecessor", env.Seq)
		}
		return nil
	}
	if env.Seq > 0 {
		if cur, err := envelope.ParseManifest(env.Manifest); err == nil && cur.Chained() {
			return badRequest("commit: an unchained manifest cannot follow a chained one (update ov)")
		}
	}
	return nil
}

// envOf reads the environment named in the path and checks that it is the caller's.
func (s *Server) envOf(r *http.Request, rc *reqCtx) ([]byte, *store.EnvHistory, error) {
	envID, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return nil, nil, err
	}
	rc.target = "env:" + hexID(envID)
	h, err := s.st.EnvHistory(r.Context(), envID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(h.AccountID, rc.accountID) {
		return nil, nil, notFound("env %s not found", hexID(envID))
	}
	if err != nil {
		return nil, nil, err
	}
	return envID, h, nil
}

// getHistory answers every manifest of an environment with its writer, and the wraps of all its
// epochs. The client verifies the signatures and the chain; the writer is the server's word.
func (s *Server) getHistory(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	envID, h, err := s.envOf(r, rc)
	if err != nil {
		return err
	}
	out := api.EnvHistory{EnvID: hexID(envID), Manifests: make([]api.HistoryManifest, 0, len(h.Manifests)), Keys: make([]api.EpochKey, 0, len(h.Keys))}
	for _, m := range h.Manifests {
		out.Manifests = append(out.Manifests, api.HistoryManifest{Seq: m.Seq, Manifest: m.Manifest, ManifestSig: m.ManifestSig, Actor: m.Actor, At: m.At})
	}
	for _, k := range h.Keys {
		out.Keys = append(out.Keys, api.EpochKey{Epoch: k.Epoch, WrappedEK: k.WrappedEK})
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// getHistoryRecords answers the sealed records, current or past, with the hashes asked for.
func (s *Server) getHistoryRecords(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	envID, err := parseID("env_id", r.PathValue("env_id"), envelope.IDLen)
	if err != nil {
		return err
	}
	rc.target = "env:" + hexID(envID)
	var req api.HistoryRecordsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Hashes) > api.MaxHistoryHashes {
		return badRequest("history records: %d hashes, at most %d", len(req.Hashes), api.MaxHistoryHashes)
	}
	for i, h := range req.Hashes {
		if len(h) != sha256.Size {
			return badRequest("history records: hash %d is %d bytes, want %d", i, len(h), sha256.Size)
		}
	}
	head, err := s.st.EnvHead(r.Context(), envID, nil, nil)
	if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(head.AccountID, rc.accountID) {
		return notFound("env %s not found", hexID(envID))
	}
	if err != nil {
		return err
	}
	recs, err := s.st.HistoryRecords(r.Context(), envID, req.Hashes)
	if err != nil {
		return err
	}
	// An answer stays within what one environment read may carry; the rest is named as omitted.
	out := api.HistoryRecords{Records: make([]api.Record, 0, len(recs))}
	var size int64
	for _, rec := range recs {
		if len(out.Records) > 0 && size+int64(len(rec.Data)) > s.lim.MaxEnvBytes {
			out.Omitted = append(out.Omitted, rec.Hash)
			continue
		}
		size += int64(len(rec.Data))
		out.Records = append(out.Records, api.Record{Blind: rec.Blind, Version: rec.Version, Record: rec.Data})
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// auditPage reads the page of the caller's audit log that the query asks for: before=ID (the next
// page), since=RFC 3339 time, target=exact target.
func (s *Server) auditPage(r *http.Request, accountID []byte, limit int) ([]store.AuditEntry, error) {
	q := store.AuditQuery{AccountID: accountID, Limit: limit}
	v := r.URL.Query()
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return nil, badRequest("before: want a positive audit entry id")
		}
		q.BeforeID = n
	}
	if t := v.Get("since"); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return nil, badRequest("since: want an RFC 3339 time")
		}
		q.Since = at
	}
	if t := v.Get("target"); t != "" {
		if len(t) > 200 {
			return nil, badRequest("target: at most 200 characters")
		}
		q.Target = t
	}
	return s.st.AuditPage(r.Context(), q)
}
