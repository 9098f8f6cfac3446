// SPDX-License-Identifier: Apache-2.0

package localapi

import "time"

// The requests `ov mcp serve` needs besides LIST and GET. None of them
// carries a value: SCOPES and INFO answer names only, and GENERATE has the
// agent make up the value, so that it is never on the socket.

var moreOpNames = map[Op]string{OpScopes: "SCOPES", OpInfo: "INFO", OpGenerate: "GENERATE"}

// The kinds of values GENERATE makes.
const (
	KindHex          = "hex"          // Length random bytes, hex-encoded (2*Length characters)
	KindBase64       = "base64"       // Length random bytes, standard base64 with padding
	KindAlphanumeric = "alphanumeric" // Length characters of [A-Za-z0-9]
	KindUUID         = "uuid"         // a random (version 4) UUID; Length must be 0 or 36
)

// Generate asks the agent to set one secret to a value it generates.
type Generate struct {
	Name   string
	Kind   string // one of the Kind constants
	Length uint32
	// Create makes the app and env when they do not exist yet.
	Create bool
}

// SecretInfo is a secret's name and version (INFO): never its value.
type SecretInfo struct {
	Name    string
	Version uint64
}

// EnvInfo describes an environment without its values.
type EnvInfo struct {
	Seq       uint64
	UpdatedAt time.Time // the last change of the environment (zero when unknown)
	Secrets   []SecretInfo
}

// Generated reports a GENERATE.
type Generated struct {
	Version uint64 // the secret's new version (1: created)
	Created bool   // the app or env was created
}

func encodeMoreRequest(e *encoder, r *Request) {
	switch r.Op {
	case OpInfo:
		e.str(r.App)
		e.str(r.Env)
	case OpGenerate:
		e.str(r.App)
		e.str(r.Env)
		e.str(r.Generate.Name)
		e.str(r.Generate.Kind)
		e.u32(r.Generate.Length)
		e.u8(map[bool]uint8{true: 1}[r.Generate.Create])
	}
}

func decodeMoreRequest(d *decoder, r *Request) {
	switch r.Op {
	case OpInfo:
		r.App, r.Env = d.str("app"), d.str("env")
	case OpGenerate:
		r.App, r.Env = d.str("app"), d.str("env")
		g := &Generate{Name: d.str("name"), Kind: d.str("kind"), Length: d.u32("length")}
		g.Create = d.flag("create")
		r.Generate = g
	}
}

func encodeMoreResponse(e *encoder, op Op, r *Response) {
	switch op {
	case OpScopes:
		e.count(len(r.Scopes))
		for _, sc := range r.Scopes {
			e.str(sc.App)
			e.str(sc.Env)
		}
	case OpInfo:
		in := r.Info
		if in == nil {
			in = &EnvInfo{}
		}
		e.u64(in.Seq)
		var t int64
		if !in.UpdatedAt.IsZero() {
			t = in.UpdatedAt.Unix()
		}
		e.u64(uint64(t))
		e.count(len(in.Secrets))
		for _, s := range in.Secrets {
			e.str(s.Name)
			e.u64(s.Version)
		}
	case OpGenerate:
		g := r.Generated
		if g == nil {
			g = &Generated{}
		}
		e.u64(g.Version)
		e.u8(map[bool]uint8{true: 1}[g.Created])
	}
}

func decodeMoreResponse(d *decoder, op Op, r *Response) {
	switch op {
	case OpScopes:
		n := d.count("scopes", 4)
		r.Scopes = make([]Scope, 0, n)
		for range n {
			r.Scopes = append(r.Scopes, Scope{App: d.str("app"), Env: d.str("env")})
		}
	case OpInfo:
		in := &EnvInfo{Seq: d.u64("seq")}
		if t := d.u64("updated at"); t != 0 {
			in.UpdatedAt = time.Unix(int64(t), 0)
		}
		n := d.count("secrets", 10)
		in.Secrets = make([]SecretInfo, 0, n)
		for range n {
			in.Secrets = append(in.Secrets, SecretInfo{Name: d.str("name"), Version: d.u64("version")})
		}
		r.Info = in
	case OpGenerate:
		r.Generated = &Generated{Version: d.u64("version"), Created: d.flag("created")}
	}
}

// flag reads a byte that must be 0 or 1.
func (d *decoder) flag(what string) bool {
	switch d.u8(what) {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(what)
	return false
}
