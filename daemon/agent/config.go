// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// Source fetches, verifies and decrypts one environment with the key it
// was opened with. [*remote.Vault] is one (the account-key path).
//
// A Source that copies key material (for example into a vault.AccountKey)
// should implement Wipe() — the agent calls it before it destroys the
// [Key], never while a Read is running — and must not use the Key after.
type Source interface {
	Read(ctx context.Context, app, env string) (*remote.Env, error)
}

// Namer is an optional interface of a [Source] that can list names without
// decrypting values; LIST uses it when present.
type Namer interface {
	Names(ctx context.Context, app, env string) ([]string, error)
}

// Opener builds the [Source] for a key: for a machine key, the machine read
// path; for an account key, a remote.Vault. It should be quick and not
// need the network (the agent calls it before READY=1); errors matching a
// localapi sentinel (localapi.ErrDenied, …) are answered with that code.
// The Source may keep k and read k's buffers until its Wipe is called.
type Opener func(ctx context.Context, k *Key) (Source, error)

// KeyKind says what a [Key] is.
type KeyKind string

// The kinds of keys, as [localapi.Status] shows them.
const (
	KeyMachine KeyKind = "machine" // 32-byte machine key (LoadCredential=)
	KeyAccount KeyKind = "account" // account key (UNLOCK)
	KeyScoped  KeyKind = "scoped"  // environment keys (UNLOCK --scope)
)

// Key is the key material the agent holds, in locked memory.
type Key struct {
	Kind KeyKind
	// Bytes is the machine key or the account key (32 bytes).
	Bytes *secmem.Buf
	// AccountID and AKVersion identify the account of an account key.
	AccountID []byte
	AKVersion uint32
	// Env holds the keys of a scoped unlock.
	Env []EnvKey
}

// EnvKey is one scoped environment key.
type EnvKey struct {
	Scope localapi.Scope
	Key   *secmem.Buf
}

// Destroy wipes and releases every buffer of k.
func (k *Key) Destroy() {
	if k == nil {
		return
	}
	if k.Bytes != nil {
		k.Bytes.Destroy()
	}
	for _, e := range k.Env {
		e.Key.Destroy()
	}
}

// Fingerprint identifies the key in status output and logs without
// revealing it: 16 hex digits of a domain-separated SHA-256.
func (k *Key) Fingerprint() string {
	h := sha256.New()
	_, _ = io.WriteString(h, "ov/v1/agent-key-fingerprint")
	if k.Bytes != nil {
		h.Write(k.Bytes.Bytes())
	}
	for _, e := range k.Env {
		_, _ = io.WriteString(h, e.Scope.String())
		h.Write(e.Key.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Format keeps key bytes out of fmt and logs.
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// Mode is how the agent runs.
type Mode int

// The modes.
const (
	// ModeSystem: ov-agent.service under PID 1, socket /run/ov/agent.sock,
	// D-Bus on the system bus.
	ModeSystem Mode = iota
	// ModeUser: `ov agent start`, under systemd --user or on its own,
	// socket under $XDG_RUNTIME_DIR, D-Bus on the session bus.
	ModeUser
)

func (m Mode) String() string {
	if m == ModeUser {
		return "user"
	}
	return "system"
}

// Bus selects the D-Bus connection.
type Bus int

// The buses.
const (
	BusAuto    Bus = iota // the system bus in ModeSystem, the session bus in ModeUser
	BusNone               // no D-Bus
	BusSystem             // $DBUS_SYSTEM_BUS_ADDRESS or the default system bus
	BusSession            // $DBUS_SESSION_BUS_ADDRESS
)

// Rate is a token bucket: PerMinute requests a minute on average, Burst at
// once. The zero Rate means the default (30 a minute, burst 10); a negative
// PerMinute turns limiting off.
type Rate struct {
	PerMinute float64
	Burst     int
}

// DefaultRate is the per-uid request limit.
var DefaultRate = Rate{PerMinute: 30, Burst: 10}

// Limits bound what local peers can make the agent hold and do. The zero
// value of each field means its default; see [DefaultLimits].
type Limits struct {
	// MaxConns bounds the connections served at once. Other uids than the
	// agent's own get at most MaxConns-MaxConnsPerUID of them, so that the
	// agent's uid always has MaxConnsPerUID.
	MaxConns int
	// MaxConnsPerUID bounds the connections of one uid served at once.
	MaxConnsPerUID int
	// IdleLock wipes a key handed over by UNLOCK when no LIST, GET or UNLOCK
	// of the agent's uid was served for that long; negative: never. A
	// machine key from LoadCredential= is exempt (see docs/agent.md).
	IdleLock time.Duration
	// LockoutDenials requests of the agent's uid or root refused by policy
	// (scope, ov mcp serve, root asking for values) within LockoutWindow
	// lock the agent; negative: never.
	LockoutDenials int
	LockoutWindow  time.Duration
	// DistinctSecrets distinct secret names of one (uid, app, env) served
	// within DistinctWindow write a warning (once per window); negative:
	// never.
	DistinctSecrets int
	DistinctWindow  time.Duration
}

// DefaultLimits are the limits of crypto.md §4.5.
var DefaultLimits = Limits{
	MaxConns:        64,
	MaxConnsPerUID:  16,
	IdleLock:        8 * time.Hour,
	LockoutDenials:  5,
	LockoutWindow:   10 * time.Minute,
	DistinctSecrets: 200,
	DistinctWindow:  time.Hour,
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	pickD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	pick(&l.MaxConns, d.MaxConns)
	pick(&l.MaxConnsPerUID, d.MaxConnsPerUID)
	pickD(&l.IdleLock, d.IdleLock)
	pick(&l.LockoutDenials, d.LockoutDenials)
	pickD(&l.LockoutWindow, d.LockoutWindow)
	pick(&l.DistinctSecrets, d.DistinctSecrets)
	pickD(&l.DistinctWindow, d.DistinctWindow)
	return l
}

// Config configures [Serve].
type Config struct {
	// Listeners to serve. When empty, the agent takes the sockets systemd
	// passed as FileDescriptorName=agent, or else binds SocketPath.
	Listeners []net.Listener
	// SocketPath is bound with [Listen] when there is no listener.
	SocketPath string
	// CredentialListeners are served as systemd credential providers
	// (LoadCredential=NAME:/run/ov/credentials.sock; see docs/agent.md).
	// When empty, a system agent takes the sockets systemd passed as
	// FileDescriptorName=credentials.
	CredentialListeners []net.Listener
	// CredentialPolicyDir holds the per-unit policies of the credential
	// provider (default [CredentialPolicyDir]).
	CredentialPolicyDir string

	// App and Env, when set, are the only (app, env) served (the machine
	// key's scope, baked into ExecStart by `ov agent install`).
	App, Env string
	// MachineKeyCredential names the systemd credential holding the 32-byte
	// machine key ($CREDENTIALS_DIRECTORY/NAME); empty means start locked
	// and wait for UNLOCK.
	MachineKeyCredential string
	// Open builds the Source for a key. Required.
	Open Opener

	Mode Mode
	Bus  Bus
	// Log receives the agent's log entries (default: a logger from
	// internal/sd at info level).
	Log *logrus.Entry
	// Rate limits requests per peer uid.
	Rate Rate
	// Limits: connection caps, idle lock, lockout, distinct-secret warning.
	Limits Limits
	// RequestTimeout bounds each connection (default localapi.Timeout) and
	// the Source read it makes.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the wait for running requests on stop (default
	// 5 s, below ov-agent.service's TimeoutStopSec=).
	ShutdownTimeout time.Duration
	// Version is reported by STATUS.
	Version string
	// RestartDir, when set, holds restart policies (UNIT.conf): the agent watches the envs they
	// name and restarts their units when a listed secret changes (watch.go, restart.go).
	RestartDir string
	// Units restarts units (default: systemd over the system bus).
	Units UnitManager
}
