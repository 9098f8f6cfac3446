// SPDX-License-Identifier: Apache-2.0

package localapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/opaquevault/opaquevault/internal/names"
)

const (
	// Version is the protocol version, the first byte of every payload.
	Version = 1
	// MaxFrame bounds a frame's payload.
	MaxFrame = 1 << 20
	// Timeout is the default deadline of each read and write.
	Timeout = 5 * time.Second
	// MaxNameLen bounds app, env and secret names.
	MaxNameLen = names.MaxEncoded
	// KeyLen is the size of an account key or an environment key.
	KeyLen = 32
)

// Op is a request type.
type Op uint8

// The requests.
const (
	OpStatus Op = 1 + iota
	OpList
	OpGet
	OpLock
	OpUnlock
	OpScopes   // the (app, env) pairs the agent can open (see wire_more.go)
	OpInfo     // names, versions and update time of an env, no values
	OpGenerate // set a secret to a value the agent generates
	OpRun      // everything `ov run` needs in one round trip (see run.go)
)

func (o Op) String() string {
	switch o {
	case OpStatus:
		return "STATUS"
	case OpList:
		return "LIST"
	case OpGet:
		return "GET"
	case OpLock:
		return "LOCK"
	case OpUnlock:
		return "UNLOCK"
	case OpScopes, OpInfo, OpGenerate:
		return moreOpNames[o]
	case OpRun:
		return "RUN"
	}
	return fmt.Sprintf("OP(%d)", uint8(o))
}

// Request is one request. App and Env are set for LIST, GET and RUN, Names
// for GET (and RUN, where none means every secret), Unlock for UNLOCK.
type Request struct {
	Op       Op
	App, Env string
	Names    []string
	Unlock   *Unlock
	Generate *Generate // GENERATE
}

// Unlock hands keys to the agent: the account key (`ov agent unlock`), or
// only some environment keys (`ov agent unlock --scope app/env`). Wipe it
// after use.
type Unlock struct {
	// AccountID (16 bytes) and AKVersion identify the account whose key
	// this is; they are not secret.
	AccountID []byte
	AKVersion uint32
	// AccountKey is the 32-byte account key, or empty with EnvKeys.
	AccountKey []byte
	// EnvKeys are scoped environment keys.
	EnvKeys []EnvKey
}

// EnvKey is the key of one environment.
type EnvKey struct {
	App, Env string
	Key      []byte // 32 bytes
}

// Wipe zeroes the key bytes.
func (u *Unlock) Wipe() {
	if u == nil {
		return
	}
	clear(u.AccountKey)
	for i := range u.EnvKeys {
		clear(u.EnvKeys[i].Key)
	}
}

// Format keeps keys out of fmt and logs.
func (Unlock) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// Format keeps keys out of fmt and logs.
func (EnvKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// Scope is an (app, env) pair.
type Scope struct{ App, Env string }

func (s Scope) String() string { return s.App + "/" + s.Env }

// The states of the agent.
const (
	StateLocked   = "locked"
	StateUnlocked = "unlocked"
)

// Status describes the agent.
type Status struct {
	State string // StateLocked or StateUnlocked
	// App and Env: the (app, env) the agent serves (from its command line),
	// empty when it serves whatever its key opens.
	App, Env string
	// Key: "machine" (LoadCredential=), "account" or "scoped" (UNLOCK), or
	// empty when locked.
	Key string
	// Fingerprint identifies the held key without revealing it (hex).
	Fingerprint string
	// Mode: "system" (socket-activated system service) or "user".
	Mode string
	// OwnerUID is the uid the agent serves; PID its process id.
	OwnerUID uint32
	PID      uint32
	// Since is when the key was loaded (zero when locked).
	Since time.Time
	// Scopes: the scopes of scoped keys.
	Scopes []Scope
	// Version of the agent binary.
	Version string
}

// Text is the one-line status systemd shows (STATUS=), e.g.
// "unlocked: myapp/production" or "locked".
func (s *Status) Text() string {
	if s.State != StateUnlocked {
		return StateLocked
	}
	if s.App != "" {
		return StateUnlocked + ": " + s.App + "/" + s.Env
	}
	switch len(s.Scopes) {
	case 0:
		return StateUnlocked + " (" + s.Key + " key)"
	case 1:
		return StateUnlocked + ": " + s.Scopes[0].String()
	default:
		return fmt.Sprintf("%s: %d scopes", StateUnlocked, len(s.Scopes))
	}
}

// Secret is one value returned by GET. Value is a slice of the received
// frame (client side) or of the agent's buffer: wipe, don't keep.
type Secret struct {
	Name    string
	Version uint64
	Value   []byte
}

// Format prints the name and version, never the value.
func (s Secret) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "%s (v%d, %d bytes)", s.Name, s.Version, len(s.Value))
}

// Response is one answer. Err is set on failure; otherwise the field of the
// request's op: Status (STATUS), Names (LIST), Secrets (GET).
type Response struct {
	Err     *Error
	Status  *Status
	Names   []string
	Secrets []Secret
	// Scopes (SCOPES), Info (INFO), Generated (GENERATE): see wire_more.go.
	Scopes    []Scope
	Info      *EnvInfo
	Generated *Generated
	// Run (RUN): whether the agent served the request; Status and Secrets
	// are set with it.
	Run *RunResult

	frame []byte // the received frame, which Secrets point into
}

// Wipe zeroes the received frame, and with it every value of Secrets.
func (r *Response) Wipe() {
	if r == nil {
		return
	}
	clear(r.frame)
	for i := range r.Secrets {
		clear(r.Secrets[i].Value)
	}
}

// ---- frames ----

// ReadFrame reads one frame and returns its payload. A length of zero or
// above [MaxFrame] is an error matching [ErrProtocol]; a short read returns
// io.ErrUnexpectedEOF (io.EOF when nothing at all was read).
func ReadFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || n > MaxFrame {
		return nil, fmt.Errorf("read frame: length %d not in 1..%d: %w", n, MaxFrame, ErrProtocol)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		clear(b)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// ---- encoding ----

// encoder writes a frame in two passes: the first only counts bytes, so the
// second fills a buffer of exactly the right size and secret bytes are never
// left behind in a grown-and-abandoned slice.
type encoder struct {
	b   []byte // nil while counting
	n   int
	err error
}

func (e *encoder) u8(v uint8) {
	if e.b != nil {
		e.b[e.n] = v
	}
	e.n++
}

func (e *encoder) u16(v uint16) {
	if e.b != nil {
		binary.BigEndian.PutUint16(e.b[e.n:], v)
	}
	e.n += 2
}

func (e *encoder) u32(v uint32) {
	if e.b != nil {
		binary.BigEndian.PutUint32(e.b[e.n:], v)
	}
	e.n += 4
}

func (e *encoder) u64(v uint64) {
	if e.b != nil {
		binary.BigEndian.PutUint64(e.b[e.n:], v)
	}
	e.n += 8
}

func (e *encoder) str(s string) {
	if len(s) > math.MaxUint16 {
		if e.err == nil {
			e.err = fmt.Errorf("encode message: string of %d bytes is too long", len(s))
		}
		s = ""
	}
	e.u16(uint16(len(s)))
	if e.b != nil {
		copy(e.b[e.n:], s)
	}
	e.n += len(s)
}

func (e *encoder) bytes(p []byte) {
	e.u32(uint32(len(p)))
	if e.b != nil {
		copy(e.b[e.n:], p)
	}
	e.n += len(p)
}

func (e *encoder) count(n int) {
	if n > math.MaxUint32 {
		if e.err == nil {
			e.err = fmt.Errorf("encode message: %d items is too many", n)
		}
	}
	e.u32(uint32(n))
}

// frame runs body twice and returns the whole frame, length header
// included.
func frame(body func(*encoder)) ([]byte, error) {
	c := &encoder{}
	body(c)
	if c.err != nil {
		return nil, c.err
	}
	if c.n > MaxFrame {
		return nil, fmt.Errorf("encode message: %d bytes, more than %d", c.n, MaxFrame)
	}
	e := &encoder{b: make([]byte, 4+c.n), n: 4}
	binary.BigEndian.PutUint32(e.b, uint32(c.n))
	body(e)
	return e.b, nil
}

// MarshalRequest returns the frame (length header included) of r. For
// UNLOCK the frame holds key bytes: clear it after writing.
func MarshalRequest(r *Request) ([]byte, error) {
	switch r.Op {
	case OpStatus, OpLock, OpList, OpGet, OpScopes, OpInfo, OpRun:
	case OpGenerate:
		if r.Generate == nil {
			return nil, errors.New("encode GENERATE: no name")
		}
	case OpUnlock:
		if r.Unlock == nil {
			return nil, errors.New("encode UNLOCK: no keys")
		}
	default:
		return nil, fmt.Errorf("encode request: unknown op %d", r.Op)
	}
	return frame(func(e *encoder) {
		e.u8(Version)
		e.u8(uint8(r.Op))
		switch r.Op {
		case OpList:
			e.str(r.App)
			e.str(r.Env)
		case OpGet, OpRun:
			e.str(r.App)
			e.str(r.Env)
			e.count(len(r.Names))
			for _, n := range r.Names {
				e.str(n)
			}
		case OpScopes, OpInfo, OpGenerate:
			encodeMoreRequest(e, r)
		case OpUnlock:
			u := r.Unlock
			e.bytes(u.AccountID)
			e.u32(u.AKVersion)
			e.bytes(u.AccountKey)
			e.count(len(u.EnvKeys))
			for _, k := range u.EnvKeys {
				e.str(k.App)
				e.str(k.Env)
				e.bytes(k.Key)
			}
		}
	})
}

// MarshalResponse returns the frame of r, the answer to a request of type
// op. For GET the frame holds the values: clear it after writing.
func MarshalResponse(op Op, r *Response) ([]byte, error) {
	return frame(func(e *encoder) {
		e.u8(Version)
		if r.Err != nil {
			e.u8(1)
			e.str(string(r.Err.Code))
			e.str(r.Err.Message)
			return
		}
		e.u8(0)
		switch op {
		case OpStatus:
			encodeStatus(e, r.Status)
		case OpList:
			e.count(len(r.Names))
			for _, n := range r.Names {
				e.str(n)
			}
		case OpGet:
			encodeSecrets(e, r.Secrets)
		case OpRun:
			encodeStatus(e, r.Status)
			e.u8(map[bool]uint8{true: 1}[r.Run != nil && r.Run.Served])
			encodeSecrets(e, r.Secrets)
		case OpScopes, OpInfo, OpGenerate:
			encodeMoreResponse(e, op, r)
		}
	})
}

// ---- decoding ----

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("decode %s at byte %d: %w", what, d.off, ErrProtocol)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail(what)
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8(what string) uint8 {
	p := d.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) u16(what string) uint16 {
	p := d.take(2, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *decoder) u32(what string) uint32 {
	p := d.take(4, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *decoder) u64(what string) uint64 {
	p := d.take(8, what)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

func (d *decoder) str(what string) string {
	n := d.u16(what)
	return string(d.take(int(n), what))
}

// bytes returns a slice of the frame (no copy).
func (d *decoder) bytes(what string) []byte {
	n := d.u32(what)
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.fail(what)
		return nil
	}
	return d.take(int(n), what)
}

// count reads a list length and checks that at least min bytes per item
// remain, so that a forged count cannot make us allocate.
func (d *decoder) count(what string, min int) int {
	n := d.u32(what)
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(min) > uint64(len(d.b)-d.off) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("end of message (trailing bytes)")
	}
}

func (d *decoder) header() uint8 {
	if v := d.u8("version"); d.err == nil && v != Version {
		d.err = fmt.Errorf("decode message: version %d, want %d: %w", v, Version, ErrProtocol)
	}
	return d.u8("type")
}

// ParseRequest decodes a request payload (without the length header). It
// checks the encoding only; the agent validates the contents. Byte fields
// (keys) are slices of p.
func ParseRequest(p []byte) (*Request, error) {
	d := &decoder{b: p}
	r := &Request{Op: Op(d.header())}
	switch r.Op {
	case OpStatus, OpLock:
	case OpList:
		r.App, r.Env = d.str("app"), d.str("env")
	case OpGet, OpRun:
		r.App, r.Env = d.str("app"), d.str("env")
		n := d.count("names", 2)
		r.Names = make([]string, 0, n)
		for range n {
			r.Names = append(r.Names, d.str("name"))
		}
	case OpScopes, OpInfo, OpGenerate:
		decodeMoreRequest(d, r)
	case OpUnlock:
		u := &Unlock{}
		u.AccountID = d.bytes("account id")
		u.AKVersion = d.u32("account key version")
		u.AccountKey = d.bytes("account key")
		n := d.count("env keys", 8)
		if n > 0 {
			u.EnvKeys = make([]EnvKey, 0, n)
		}
		for range n {
			u.EnvKeys = append(u.EnvKeys, EnvKey{App: d.str("app"), Env: d.str("env"), Key: d.bytes("env key")})
		}
		r.Unlock = u
	default:
		if d.err == nil {
			return nil, fmt.Errorf("decode request: unknown op %d: %w", uint8(r.Op), ErrProtocol)
		}
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// ParseResponse decodes the payload of the answer to a request of type op.
// Secret values are slices of p; [Response.Wipe] clears p.
func ParseResponse(op Op, p []byte) (*Response, error) {
	d := &decoder{b: p}
	r := &Response{frame: p}
	switch d.header() {
	case 0:
	case 1:
		r.Err = &Error{Code: Code(d.str("error code")), Message: d.str("error message")}
		d.end()
		if d.err != nil {
			return nil, d.err
		}
		return r, nil
	default:
		d.fail("result")
	}
	switch op {
	case OpStatus:
		r.Status = decodeStatus(d)
	case OpList:
		n := d.count("names", 2)
		r.Names = make([]string, 0, n)
		for range n {
			r.Names = append(r.Names, d.str("name"))
		}
	case OpGet:
		r.Secrets = decodeSecrets(d)
	case OpRun:
		r.Status = decodeStatus(d)
		r.Run = &RunResult{Served: d.flag("served")}
		r.Secrets = decodeSecrets(d)
	case OpScopes, OpInfo, OpGenerate:
		decodeMoreResponse(d, op, r)
	case OpLock, OpUnlock:
	default:
		return nil, fmt.Errorf("decode response: unknown op %d", uint8(op))
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

func encodeStatus(e *encoder, s *Status) {
	if s == nil {
		s = &Status{}
	}
	e.str(s.State)
	e.str(s.App)
	e.str(s.Env)
	e.str(s.Key)
	e.str(s.Fingerprint)
	e.str(s.Mode)
	e.u32(s.OwnerUID)
	e.u32(s.PID)
	var since int64
	if !s.Since.IsZero() {
		since = s.Since.Unix()
	}
	e.u64(uint64(since))
	e.count(len(s.Scopes))
	for _, sc := range s.Scopes {
		e.str(sc.App)
		e.str(sc.Env)
	}
	e.str(s.Version)
}

func decodeStatus(d *decoder) *Status {
	s := &Status{}
	s.State, s.App, s.Env = d.str("state"), d.str("app"), d.str("env")
	s.Key, s.Fingerprint, s.Mode = d.str("key"), d.str("fingerprint"), d.str("mode")
	s.OwnerUID, s.PID = d.u32("owner uid"), d.u32("pid")
	if since := d.u64("since"); since != 0 {
		s.Since = time.Unix(int64(since), 0)
	}
	n := d.count("scopes", 4)
	for range n {
		s.Scopes = append(s.Scopes, Scope{App: d.str("app"), Env: d.str("env")})
	}
	s.Version = d.str("version")
	return s
}

func encodeSecrets(e *encoder, secrets []Secret) {
	e.count(len(secrets))
	for _, s := range secrets {
		e.str(s.Name)
		e.u64(s.Version)
		e.bytes(s.Value)
	}
}

func decodeSecrets(d *decoder) []Secret {
	n := d.count("secrets", 14)
	out := make([]Secret, 0, n)
	for range n {
		out = append(out, Secret{Name: d.str("name"), Version: d.u64("version"), Value: d.bytes("value")})
	}
	return out
}
