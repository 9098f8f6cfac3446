// SPDX-License-Identifier: Apache-2.0

// Package store is the storage of ov-server: accounts, devices, apps, environments, sealed records,
// machines, machine wraps, statements signed by an account (revocation lists, allowed sets) and the
// audit log, behind one interface ([Store]) that every database implementation satisfies and that
// one shared conformance suite (package storetest) checks.
//
// Everything stored is ciphertext, blinded names, signed manifests, public keys or one-way
// verifiers. The package never sees key material and must never import internal/vault.
//
// # Semantics every implementation keeps
//
//   - Identifiers are raw bytes (16 bytes for accounts, apps, envs and machines; 8 for device key
//     ids); the store compares them byte for byte and does not check their length.
//   - Emails are kept as [NormalizeEmail] returns them and are unique in that form, so uniqueness
//     and lookup are case-insensitive.
//   - Times are kept to the microsecond, in UTC; the zero [time.Time] means "never" or "none".
//   - Lists ordered by name or blind id compare bytes (SQLite BINARY, PostgreSQL COLLATE "C").
//   - Integers (seq, version, epoch) must fit in an int64: the server refuses larger values.
//   - An environment changes only through [Store.CommitEnv], which is one transaction with a
//     compare-and-swap on the manifest sequence: a stale writer gets [ErrConflict], never a lost
//     update.
//   - Every commit appends its signed manifest, with the writer, to the environment's history, and
//     keeps the sealed records it puts (by SHA-256) until [Commit.KeepVersions] prunes them; the
//     history is never rewritten.
//   - The audit log is append-only: there is no method to change or delete an entry, and IDs grow
//     in the order entries are appended.
//
// Errors: methods wrap [ErrNotFound], [ErrConflict] or [ErrExists] where their doc says so, and
// otherwise return database errors as they are.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Sentinel errors, wrapped by the methods of [Store].
var (
	// ErrNotFound means the object (or the parent it needs) does not exist, or does not belong to the
	// account named in the call.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a compare-and-swap failed: the state changed since the caller read it.
	ErrConflict = errors.New("conflict")
	// ErrExists means a unique key (id, email, name within its parent) is taken.
	ErrExists = errors.New("already exists")
)

// NormalizeEmail returns the form in which an email is stored and looked up: trimmed of surrounding
// white space and lower-cased, so that "Alice@Example.COM" and "alice@example.com" are one account.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// KDF is an account's Argon2id parameter set.
type KDF struct {
	T    uint32
	M    uint32 // KiB
	P    uint8
	Salt []byte
}

// Account is one account: what a device needs to unlock, and the login verifier.
type Account struct {
	ID              []byte
	Email           string // normalized
	KDF             KDF
	WrappedAK       []byte
	AKVersion       uint32
	KeyCheck        []byte
	LoginVerifier   []byte
	WrappedSignSeed []byte
	SignPub         []byte
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// PasswordChange replaces an account's password-dependent fields, with a compare-and-swap on the
// login verifier: it applies only while OldLoginVerifier is the stored one.
type PasswordChange struct {
	AccountID        []byte
	OldLoginVerifier []byte
	KDF              KDF
	WrappedAK        []byte
	AKVersion        uint32
	KeyCheck         []byte
	LoginVerifier    []byte
	// RevokeMachines deletes every machine of the account (and their wraps) in the same
	// transaction.
	RevokeMachines bool
	At             time.Time
}

// Device is one device API key. The server keeps only the SHA-256 verifier of its secret.
type Device struct {
	KeyID      []byte
	AccountID  []byte
	Verifier   []byte
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never
	RevokedAt  time.Time // zero: active
}

// Revoked reports whether the device key was revoked.
func (d *Device) Revoked() bool { return !d.RevokedAt.IsZero() }

// App is an application of an account. Envs is filled by [Store.Apps].
type App struct {
	ID        []byte
	AccountID []byte
	Name      string
	CreatedAt time.Time
	Envs      []Env
}

// Env is an environment: its current key epoch and wrap, and its newest signed manifest.
type Env struct {
	ID        []byte
	AppID     []byte
	AccountID []byte // of its app; filled on reads
	AppName   string // filled on reads
	Name      string
	Epoch     uint32
	WrappedEK []byte // the wrap of the current epoch's key
	Seq       uint64 // 0 before the first commit
	Manifest  []byte
	// ManifestSig is the Ed25519 signature of Manifest.
	ManifestSig []byte
	Count       int // number of records
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Record is one sealed secret of an environment, addressed by its blind id.
type Record struct {
	Blind   []byte
	Version uint64
	// Hash is the SHA-256 of Data. The store computes it on write; callers leave it empty.
	Hash []byte
	// Data is the sealed record; empty when read with [RecordsIndex].
	Data []byte
	// Size is len(Data), filled on reads in both modes.
	Size int
}

// RecordsMode says how much of the records [Store.ReadEnv] returns.
type RecordsMode int

// RecordsMode values.
const (
	RecordsNone  RecordsMode = iota // no records
	RecordsIndex                    // blind, version and hash, without the sealed bytes
	RecordsFull                     // everything
)

// ReadOptions tune [Store.ReadEnv].
type ReadOptions struct {
	Records RecordsMode
	// MachineID, when set, asks for that machine's wrap of the environment's current epoch.
	MachineID []byte
}

// EnvView is one consistent snapshot of an environment.
type EnvView struct {
	Env     Env
	Records []Record // sorted by blind id
	// MachineWrap is the wrap asked for with [ReadOptions.MachineID]; nil if there is none.
	MachineWrap []byte
}

// Rotation replaces an environment's key by a new epoch inside a [Commit].
type Rotation struct {
	Epoch     uint32
	WrappedEK []byte
	// MachineWraps replace every machine wrap of the environment.
	MachineWraps []MachineWrap
}

// Commit writes an environment in one transaction, with a compare-and-swap on its sequence.
type Commit struct {
	EnvID []byte
	// ExpectedSeq is the sequence the writer read; the commit applies only while it is current.
	ExpectedSeq uint64
	// Seq is the new sequence (the signed manifest's).
	Seq         uint64
	Manifest    []byte
	ManifestSig []byte
	// Put adds or replaces records. With Rotate, Put is the whole new set of records.
	Put []Record
	// Delete removes records by blind id (ignored with Rotate, which removes them all).
	Delete [][]byte
	// Rotate, when set, moves the environment to a new key epoch: every record and every machine
	// wrap of the environment is replaced.
	Rotate *Rotation
	// RevokeMachines are deleted (with their wraps); each must belong to the environment's account.
	RevokeMachines [][]byte
	At             time.Time
	// Actor is the authenticated writer, kept with the manifest in the history.
	Actor string
	// KeepVersions, when above 0, prunes the sealed records kept in the history for the names
	// in Put down to their newest KeepVersions versions (the current one is always kept).
	KeepVersions int
}

// Machine is a registered machine key.
type Machine struct {
	ID         []byte
	AccountID  []byte
	Verifier   []byte
	XPub       []byte
	Grant      []byte
	GrantSig   []byte
	PinSignPub []byte
	PinMAC     []byte
	NotAfter   time.Time // zero: no expiry
	Label      string
	// AccountWrap is the account key wrapped to the machine; set only for account-wide machines.
	AccountWrap []byte
	AKVersion   uint32
	CreatedAt   time.Time
	LastSeenAt  time.Time // zero: never
}

// AccountWide reports whether the machine reaches every environment of its account.
func (m *Machine) AccountWide() bool { return len(m.AccountWrap) != 0 }

// MachineWrap is an environment key of one epoch wrapped to one machine.
type MachineWrap struct {
	MachineID []byte
	AppID     []byte
	EnvID     []byte
	Epoch     uint32
	Wrap      []byte
}

// SignedObject is a statement signed by an account's signing key that the server only keeps and
// serves (it cannot create or change one): the account's machine revocation list (Kind
// "revocations", Key "") and the allowed set of each environment epoch (Kind "env-access", Key
// "<env_id hex>/<epoch>"). Version is the statement's own counter, which only grows.
type SignedObject struct {
	AccountID []byte
	Kind      string
	Key       string
	Version   uint64
	Raw       []byte
	Sig       []byte
	UpdatedAt time.Time
}

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	ID         int64  // assigned by the store, increasing
	AccountID  []byte // the account the entry belongs to; nil for anonymous events
	Time       time.Time
	Actor      string // "device:<key_id>", "machine:<id>" or "anonymous"
	Action     string
	Target     string
	RemoteAddr string
	Result     string
}

// Store is the server's storage. Implementations are safe for concurrent use.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
	// ServerSecret returns the server's random 32-byte secret, created on first use and the same
	// for every instance sharing the database.
	ServerSecret(ctx context.Context) ([]byte, error)

	// CreateAccount stores an account with its first device. Errors wrap ErrExists if the id, the
	// (normalized) email or the device key id is taken.
	CreateAccount(ctx context.Context, a *Account, first *Device) error
	// Account returns an account by id. Errors wrap ErrNotFound.
	Account(ctx context.Context, id []byte) (*Account, error)
	// AccountByEmail returns an account by email, normalized first. Errors wrap ErrNotFound.
	AccountByEmail(ctx context.Context, email string) (*Account, error)
	// ChangePassword applies c. Errors wrap ErrNotFound, or ErrConflict if the login verifier is
	// no longer c.OldLoginVerifier.
	ChangePassword(ctx context.Context, c *PasswordChange) error

	// AddDevice enrols a device key. Errors wrap ErrExists (key id taken) or ErrNotFound (account).
	AddDevice(ctx context.Context, d *Device) error
	// Device returns a device key, revoked or not. Errors wrap ErrNotFound.
	Device(ctx context.Context, keyID []byte) (*Device, error)
	// Devices lists an account's devices, oldest first.
	Devices(ctx context.Context, accountID []byte) ([]Device, error)
	// TouchDevice records that the key was used at time at. Errors wrap ErrNotFound.
	TouchDevice(ctx context.Context, keyID []byte, at time.Time) error
	// RevokeDevice revokes a device key of the account; revoking a revoked key changes nothing.
	// Errors wrap ErrNotFound.
	RevokeDevice(ctx context.Context, accountID, keyID []byte, at time.Time) error

	// CreateApp stores an app. Errors wrap ErrExists (id, or name within the account) or
	// ErrNotFound (account).
	CreateApp(ctx context.Context, a *App) error
	// Apps lists an account's apps by name, each with its envs by name.
	Apps(ctx context.Context, accountID []byte) ([]App, error)
	// CreateEnv stores an environment of e.AppID, which must belong to e.AccountID, with the key
	// wrap e.WrappedEK of epoch e.Epoch. Errors wrap ErrExists (id, or name within the app) or
	// ErrNotFound (app).
	CreateEnv(ctx context.Context, e *Env) error
	// ReadEnv returns one consistent snapshot of an environment. Errors wrap ErrNotFound.
	ReadEnv(ctx context.Context, envID []byte, opt ReadOptions) (*EnvView, error)
	// CommitEnv applies c in one transaction. Errors wrap ErrConflict when the environment's seq is
	// not c.ExpectedSeq, or ErrNotFound (environment, or a machine named in c).
	CommitEnv(ctx context.Context, c *Commit) error

	// CreateMachine stores a machine and its wraps. Errors wrap ErrExists or ErrNotFound
	// (account, or an environment of a wrap).
	CreateMachine(ctx context.Context, m *Machine, wraps []MachineWrap) error
	// Machine returns a machine. Errors wrap ErrNotFound.
	Machine(ctx context.Context, id []byte) (*Machine, error)
	// Machines lists an account's machines, oldest first.
	Machines(ctx context.Context, accountID []byte) ([]Machine, error)
	// MachineWraps lists a machine's wraps.
	MachineWraps(ctx context.Context, machineID []byte) ([]MachineWrap, error)
	// TouchMachine records that the machine was seen at time at. Errors wrap ErrNotFound.
	TouchMachine(ctx context.Context, id []byte, at time.Time) error
	// DeleteMachine deletes a machine of the account with its wraps (soft revoke). Errors wrap
	// ErrNotFound.
	DeleteMachine(ctx context.Context, accountID, id []byte) error
	// ReplaceMachineWraps replaces every wrap of a machine of the account. Errors wrap ErrNotFound.
	ReplaceMachineWraps(ctx context.Context, accountID, machineID []byte, wraps []MachineWrap) error

	// PutSigned stores o in place of the object of the same (account, kind, key), only if there is
	// none or its Version is lower than o.Version. Errors wrap ErrConflict (a version not above the
	// stored one) or ErrNotFound (account).
	PutSigned(ctx context.Context, o *SignedObject) error
	// Signed returns the object (account, kind, key). Errors wrap ErrNotFound.
	Signed(ctx context.Context, accountID []byte, kind, key string) (*SignedObject, error)

	// AppendAudit appends e and sets e.ID.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// Audit lists an account's newest entries first, at most limit of them.
	Audit(ctx context.Context, accountID []byte, limit int) ([]AuditEntry, error)
	// AppendAuditBatch appends every entry in one transaction (all or none), in order, and sets
	// their IDs.
	AppendAuditBatch(ctx context.Context, es []*AuditEntry) error

	// EnvHead returns the head of an environment in one statement; when machineID is not nil,
	// also that machine's wrap of the current epoch and whether a machine with that id and
	// verifier exists. Errors wrap ErrNotFound.
	EnvHead(ctx context.Context, envID, machineID, machineVerifier []byte) (*EnvHead, error)
	// MachineLive reports whether a machine with this id and verifier exists (was not deleted).
	MachineLive(ctx context.Context, id, verifier []byte) (bool, error)
	// Usage counts what an account holds.
	Usage(ctx context.Context, accountID []byte) (*Usage, error)

	// CreateInvite stores an invite. Errors wrap ErrExists (id or verifier taken).
	CreateInvite(ctx context.Context, inv *Invite) error
	// Invites lists every invite, oldest first.
	Invites(ctx context.Context) ([]Invite, error)
	// RevokeInvite revokes an unused invite. Errors wrap ErrNotFound (no such invite, or used).
	RevokeInvite(ctx context.Context, id []byte, at time.Time) error
	// CreateAccountInvited is CreateAccount that also spends the invite whose verifier is given,
	// in the same transaction: the invite must exist, be unused, unrevoked and unexpired at a.CreatedAt.
	// Errors wrap ErrNotFound (no such usable invite; nothing is written) or ErrExists.
	CreateAccountInvited(ctx context.Context, a *Account, first *Device, inviteVerifier []byte) error

	// EnvHistory returns every manifest an environment had, oldest first, and the wraps of all its
	// key epochs. Errors wrap ErrNotFound.
	EnvHistory(ctx context.Context, envID []byte) (*EnvHistory, error)
	// HistoryRecords returns the sealed records of the environment, current or past, whose SHA-256
	// is one of hashes; a hash with no record (never stored, or pruned) is left out.
	HistoryRecords(ctx context.Context, envID []byte, hashes [][]byte) ([]Record, error)
	// AuditPage lists a page of an account's audit log, newest first.
	AuditPage(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}
