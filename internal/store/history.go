// SPDX-License-Identifier: Apache-2.0

package store

import "time"

// ManifestVersion is one signed manifest an environment had, with who committed it. Every commit
// adds one; none is ever changed or removed, so the list is the environment's whole history.
type ManifestVersion struct {
	Seq         uint64
	Manifest    []byte
	ManifestSig []byte
	// Actor is the authenticated writer as the server saw it ("device:<key_id hex>" or
	// "machine:<id hex>"); empty for manifests written before history was kept.
	Actor string
	At    time.Time
}

// EpochKey is the account-key wrap of one key epoch of an environment.
type EpochKey struct {
	Epoch     uint32
	WrappedEK []byte
}

// EnvHistory is the history of an environment: every manifest (oldest first) and the wrap of every
// key epoch (oldest first), so that a reader can open the sealed records of any epoch.
type EnvHistory struct {
	AccountID []byte
	Manifests []ManifestVersion
	Keys      []EpochKey
}

// AuditQuery selects a page of an account's audit log, newest first.
type AuditQuery struct {
	AccountID []byte
	// BeforeID, when above 0, keeps only entries with a smaller ID (the next page).
	BeforeID int64
	// Since, when not zero, keeps only entries at or after it.
	Since time.Time
	// Target, when not empty, keeps only entries whose target is exactly it.
	Target string
	Limit  int
}
