// SPDX-License-Identifier: Apache-2.0

package api

import "time"

// KDF is the Argon2id parameter set of an account. The client checks the bounds before deriving.
type KDF struct {
	T    uint32 `json:"t"`
	M    uint32 `json:"m_kib"`
	P    uint8  `json:"p"`
	Salt []byte `json:"salt"`
}

// NewDevice enrols a device API key: the server keeps only the verifier.
type NewDevice struct {
	KeyID    string `json:"key_id"` // 16 hex digits (8 bytes)
	Verifier []byte `json:"verifier"`
	Name     string `json:"name"`
}

// RegisterRequest creates an account together with its first device.
type RegisterRequest struct {
	Email           string    `json:"email"`
	AccountID       string    `json:"account_id"` // 32 hex digits
	KDF             KDF       `json:"kdf"`
	WrappedAK       []byte    `json:"wrapped_ak"`
	AKVersion       uint32    `json:"ak_version"`
	KeyCheck        []byte    `json:"key_check"`
	LoginVerifier   []byte    `json:"login_verifier"`
	WrappedSignSeed []byte    `json:"wrapped_sign_seed"`
	SignPub         []byte    `json:"sign_pub"`
	Device          NewDevice `json:"device"`
	// Invite is a one-time invite code (ovi_...), needed when the server's registration policy is
	// "invite". It is a secret: never logged, never on a command line.
	Invite string `json:"invite,omitempty"`
}

// AccountBundle is what a device needs to unlock: everything is ciphertext or public.
type AccountBundle struct {
	AccountID       string `json:"account_id"`
	Email           string `json:"email"`
	KDF             KDF    `json:"kdf"`
	WrappedAK       []byte `json:"wrapped_ak"`
	AKVersion       uint32 `json:"ak_version"`
	KeyCheck        []byte `json:"key_check"`
	WrappedSignSeed []byte `json:"wrapped_sign_seed"`
	SignPub         []byte `json:"sign_pub"`
}

// LoginParamsRequest asks for the KDF parameters of an email address.
type LoginParamsRequest struct {
	Email string `json:"email"`
}

// LoginParams answers a LoginParamsRequest. For an unknown email the server answers with stable
// made-up values, so that the endpoint does not reveal which addresses have accounts.
type LoginParams struct {
	AccountID string `json:"account_id"`
	KDF       KDF    `json:"kdf"`
}

// LoginRequest enrols a new device, proving knowledge of the password and Account Secret Key.
type LoginRequest struct {
	Email     string    `json:"email"`
	LoginAuth []byte    `json:"login_auth"`
	Device    NewDevice `json:"device"`
}

// PasswordChange re-wraps the account key under a new password. OldLoginAuth proves the old secrets,
// so a stolen device key alone cannot lock the owner out.
type PasswordChange struct {
	OldLoginAuth  []byte `json:"old_login_auth"`
	KDF           KDF    `json:"kdf"`
	WrappedAK     []byte `json:"wrapped_ak"`
	AKVersion     uint32 `json:"ak_version"`
	KeyCheck      []byte `json:"key_check"`
	LoginVerifier []byte `json:"login_verifier"`
	// RevokeMachines deletes every machine of the account in the same transaction.
	RevokeMachines bool `json:"revoke_machines"`
}

// Device is one enrolled device key, as listed.
type Device struct {
	KeyID      string     `json:"key_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Current    bool       `json:"current"`
}

// DeviceList lists the devices of an account.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// NewApp creates an app. The client draws the id.
type NewApp struct {
	AppID string `json:"app_id"`
	Name  string `json:"name"`
}

// NewEnv creates an environment with its first environment key wrap (epoch 1).
type NewEnv struct {
	EnvID     string `json:"env_id"`
	Name      string `json:"name"`
	Epoch     uint32 `json:"epoch"`
	WrappedEK []byte `json:"wrapped_ek"`
}

// App is an app with its environments.
type App struct {
	AppID     string    `json:"app_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Envs      []Env     `json:"envs"`
}

// Env describes an environment without its records.
type Env struct {
	EnvID     string    `json:"env_id"`
	AppID     string    `json:"app_id"`
	Name      string    `json:"name"`
	Epoch     uint32    `json:"epoch"`
	Seq       uint64    `json:"seq"`
	Count     int       `json:"count"` // records in the newest manifest
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AppList lists the apps of an account.
type AppList struct {
	Apps []App `json:"apps"`
}

// Record is one sealed secret, addressed by its blind id.
type Record struct {
	Blind   []byte `json:"blind"`
	Version uint64 `json:"version"`
	Record  []byte `json:"record"`
}

// EnvState is the newest state of an environment: its key wrap, signed manifest and records.
// Seq is 0 and Manifest is empty for an environment that was never written.
type EnvState struct {
	AppID       string `json:"app_id"`
	AppName     string `json:"app_name"`
	EnvID       string `json:"env_id"`
	EnvName     string `json:"env_name"`
	Epoch       uint32 `json:"epoch"`
	WrappedEK   []byte `json:"wrapped_ek,omitempty"`   // for devices and account-wide machines
	MachineWrap []byte `json:"machine_wrap,omitempty"` // for a scoped machine: its wrap of this epoch's key
	Seq         uint64 `json:"seq"`
	Manifest    []byte `json:"manifest,omitempty"`
	ManifestSig []byte `json:"manifest_sig,omitempty"`
	// Access and AccessSig are the signed allowed set of this epoch (crypto.md §2.8), when stored.
	Access    []byte    `json:"access,omitempty"`
	AccessSig []byte    `json:"access_sig,omitempty"`
	Records   []Record  `json:"records"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Rotation replaces an environment's key by a new epoch in the same commit: every record must be
// re-sealed under the new key, and MachineWraps re-wrap it for the machines that keep access.
type Rotation struct {
	Epoch        uint32        `json:"epoch"`
	WrappedEK    []byte        `json:"wrapped_ek"`
	MachineWraps []MachineWrap `json:"machine_wraps,omitempty"`
}

// Commit writes an environment: records and the new signed manifest, all or nothing, with a
// compare-and-swap on the manifest sequence. The manifest's seq must be ExpectedSeq+1, and after
// Put and Delete are applied the stored records must be exactly the manifest's entries.
type Commit struct {
	ExpectedSeq uint64    `json:"expected_seq"`
	Manifest    []byte    `json:"manifest"`
	ManifestSig []byte    `json:"manifest_sig"`
	Put         []Record  `json:"put,omitempty"`
	Delete      [][]byte  `json:"delete,omitempty"` // blind ids
	Rotate      *Rotation `json:"rotate,omitempty"`
	// RevokeMachines are removed in the same transaction (hard revoke with rotation).
	RevokeMachines []string `json:"revoke_machines,omitempty"`
}

// CommitResult answers a successful Commit.
type CommitResult struct {
	Seq uint64 `json:"seq"`
}

// MachineWrap is an environment key wrapped to one machine's X25519 key.
type MachineWrap struct {
	MachineID string `json:"machine_id,omitempty"`
	AppID     string `json:"app_id"`
	EnvID     string `json:"env_id"`
	Epoch     uint32 `json:"epoch"`
	Wrap      []byte `json:"wrap"`
}

// MachinePin carries the account signing key to a machine, authenticated by a MAC under a key
// derived from the machine key (so the server cannot substitute it).
type MachinePin struct {
	SignPub []byte `json:"sign_pub"`
	MAC     []byte `json:"mac"`
}

// NewMachine registers a machine key. Exactly one of Wraps (scoped) or AccountWrap (account-wide) is set.
type NewMachine struct {
	MachineID   string        `json:"machine_id"` // 32 hex digits
	Verifier    []byte        `json:"verifier"`
	XPub        []byte        `json:"x25519_pub"`
	Grant       []byte        `json:"grant"`
	GrantSig    []byte        `json:"grant_sig"`
	Pin         MachinePin    `json:"pin"`
	NotAfter    *time.Time    `json:"not_after,omitempty"`
	Label       string        `json:"label"` // e.g. hostname:/etc/ov/myapp.key
	Wraps       []MachineWrap `json:"wraps,omitempty"`
	AccountWrap []byte        `json:"account_wrap,omitempty"`
	AKVersion   uint32        `json:"ak_version,omitempty"`
}

// Machine is a registered machine, as listed to its owner.
type Machine struct {
	MachineID   string     `json:"machine_id"`
	Label       string     `json:"label"`
	XPub        []byte     `json:"x25519_pub"`
	Grant       []byte     `json:"grant"`
	GrantSig    []byte     `json:"grant_sig"`
	AccountWide bool       `json:"account_wide"`
	CreatedAt   time.Time  `json:"created_at"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	LastSeenAt  *time.Time `json:"last_seen_at,omitempty"`
}

// MachineList lists the machines of an account.
type MachineList struct {
	Machines []Machine `json:"machines"`
}

// MachineWraps replaces the wraps of one machine (used after a rotation).
type MachineWraps struct {
	Wraps []MachineWrap `json:"wraps"`
}

// MachineSelf is what a machine fetches about itself.
type MachineSelf struct {
	AccountID   string     `json:"account_id"`
	MachineID   string     `json:"machine_id"`
	Pin         MachinePin `json:"pin"`
	Grant       []byte     `json:"grant"`
	GrantSig    []byte     `json:"grant_sig"`
	AccountWrap []byte     `json:"account_wrap,omitempty"` // account-wide machines only
	AKVersion   uint32     `json:"ak_version,omitempty"`
}

// Signed is a statement signed by the account that the server keeps and serves as it was given:
// the machine revocation list, or the allowed set of an environment epoch (crypto.md §2.8).
type Signed struct {
	Raw []byte `json:"raw"`
	Sig []byte `json:"sig"`
}

// AuditEntry is one line of the append-only audit log. It never holds plaintext, and never joins a
// blind id to a name (the server does not know names).
type AuditEntry struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"` // "device:<key_id>", "machine:<machine_id>", "anonymous"
	Action     string    `json:"action"`
	Target     string    `json:"target,omitempty"` // e.g. "env:<env_id>"
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Result     string    `json:"result"` // "ok" or an error code
}

// AuditList lists audit entries, newest first.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a stable code and a human message (never containing secret material).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest   = "bad_request"  // 400
	CodeUnauthorized = "unauthorized" // 401: missing, unknown or revoked credentials
	CodeForbidden    = "forbidden"    // 403: authenticated but out of scope
	CodeNotFound     = "not_found"    // 404
	CodeConflict     = "conflict"     // 409: stale manifest seq, name taken
	CodeTooLarge     = "too_large"    // 413
	CodeTooMany      = "too_many"     // 422: too many secrets in one environment
	CodeRateLimited  = "rate_limited" // 429 with Retry-After
	CodeInternal     = "internal"     // 500
	CodeUnavailable  = "unavailable"  // 503

	CodeQuotaExceeded      = "quota_exceeded"      // 403: the account is at one of the server's quotas
	CodeRegistrationClosed = "registration_closed" // 403: the server takes no new accounts
	CodeInviteRequired     = "invite_required"     // 403: registration needs an invite code
	CodeInviteInvalid      = "invite_invalid"      // 403: the invite code is unknown, used, revoked or expired
	CodeOverloaded         = "overloaded"          // 503 with Retry-After: refused before processing; safe to retry
)
