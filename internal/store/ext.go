// SPDX-License-Identifier: Apache-2.0

package store

import (
	"encoding/hex"
	"strconv"
	"time"
)

// Invite is a one-time registration code made by the server's operator. The store keeps only its
// verifier (SHA-256 of the code); the code itself is shown once and never stored.
type Invite struct {
	// ID is a short public identifier (8 bytes) for listing and revoking.
	ID       []byte
	Verifier []byte // 32 bytes; unique
	Note     string
	// CreatedAt, ExpiresAt (zero: never), UsedAt (zero: unused) and RevokedAt (zero: active).
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	RevokedAt time.Time
	// UsedBy is the account the invite created; nil while unused.
	UsedBy []byte
}

// Usage is what an account holds, for quotas.
type Usage struct {
	Apps     int
	Envs     int
	Secrets  int   // records in all its environments
	Bytes    int64 // sealed record bytes in all its environments
	Machines int
	Devices  int // active (not revoked) device keys
}

// EnvHead is the cheap part of an environment: enough to tell whether a cached copy of it is
// current. Seq and ManifestSig change with every commit.
type EnvHead struct {
	AccountID   []byte
	Seq         uint64
	Epoch       uint32
	ManifestSig []byte
	UpdatedAt   time.Time
	// MachineWrap is the wrap of the current epoch's key for the machine asked for; nil if none.
	MachineWrap []byte
	// MachineLive tells whether a machine with the id and verifier asked for exists (it was not
	// deleted), in the same snapshot as the rest.
	MachineLive bool
	// AccessRaw and AccessSig are the signed object of kind [EnvAccessKind] and key
	// [EnvAccessKey](env, Epoch), the allowed set of the current epoch; nil if none is stored.
	AccessRaw, AccessSig []byte
}

// EnvAccessKind is the kind of the signed objects that hold an epoch's allowed set (crypto.md
// §2.8); EnvAccessKey is their key: the env id in lowercase hex, "/", the epoch in decimal.
const EnvAccessKind = "env-access"

// EnvAccessKey is the key of an epoch's allowed set; see [EnvAccessKind].
func EnvAccessKey(envID []byte, epoch uint32) string {
	return hex.EncodeToString(envID) + "/" + strconv.FormatUint(uint64(epoch), 10)
}

// PoolStats is the state of a connection pool, for the server's metrics. A store that pools
// connections itself (pgstore) offers them by name through a PoolStats() map[string]PoolStats method.
type PoolStats struct {
	Max, Open, InUse, Idle int
	Waits                  int64         // acquisitions that had to wait for a connection
	WaitTime               time.Duration // total time spent waiting
}
