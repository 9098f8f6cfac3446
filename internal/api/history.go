// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// MaxHistoryHashes bounds the record hashes one HistoryRecordsRequest may name; a client asks for
// more in several requests.
const MaxHistoryHashes = 256

// HistoryManifest is one signed manifest an environment had, and who the server saw write it.
type HistoryManifest struct {
	Seq         uint64    `json:"seq"`
	Manifest    []byte    `json:"manifest"`
	ManifestSig []byte    `json:"manifest_sig"`
	Actor       string    `json:"actor,omitempty"` // "device:<key_id>" or "machine:<id>"; empty before history was kept
	At          time.Time `json:"at"`
}

// EpochKey is the account-key wrap of one key epoch of an environment.
type EpochKey struct {
	Epoch     uint32 `json:"epoch"`
	WrappedEK []byte `json:"wrapped_ek"`
}

// EnvHistory is every manifest of an environment, oldest first, and the wraps of all its epochs.
type EnvHistory struct {
	EnvID     string            `json:"env_id"`
	Manifests []HistoryManifest `json:"manifests"`
	Keys      []EpochKey        `json:"keys"`
}

// HistoryRecordsRequest asks for sealed records, current or past, by their SHA-256.
type HistoryRecordsRequest struct {
	Hashes [][]byte `json:"hashes"`
}

// HistoryRecords answers a HistoryRecordsRequest; hashes with no stored record (pruned) are left
// out. Omitted lists hashes whose records exist but did not fit in this answer's size budget: ask
// for them again.
type HistoryRecords struct {
	Records []Record `json:"records"`
	Omitted [][]byte `json:"omitted,omitempty"`
}

// AuditQuery selects a page of the caller's audit log.
type AuditQuery struct {
	Limit    int
	BeforeID int64     // entries with a smaller id (the next page); 0: the newest
	Since    time.Time // zero: no bound
	Target   string    // exact target such as "env:<env_id>"; empty: all
}

// EnvHistory returns the manifest history of an environment (device).
func (c *Client) EnvHistory(ctx context.Context, envID string) (*EnvHistory, error) {
	var out EnvHistory
	return &out, c.do(ctx, "GET", "/v1/envs/"+url.PathEscape(envID)+"/history", nil, &out)
}

// HistoryRecords returns sealed records of an environment by hash (device).
func (c *Client) HistoryRecords(ctx context.Context, envID string, hashes [][]byte) (*HistoryRecords, error) {
	var out HistoryRecords
	return &out, c.do(ctx, "POST", "/v1/envs/"+url.PathEscape(envID)+"/history/records", &HistoryRecordsRequest{Hashes: hashes}, &out)
}

// AuditPage lists a page of the caller's audit log, newest first.
func (c *Client) AuditPage(ctx context.Context, q AuditQuery) (*AuditList, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.BeforeID > 0 {
		v.Set("before", strconv.FormatInt(q.BeforeID, 10))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Target != "" {
		v.Set("target", q.Target)
	}
	var out AuditList
	return &out, c.do(ctx, "GET", "/v1/audit?"+v.Encode(), nil, &out)
}
