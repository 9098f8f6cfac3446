// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	ovnames "github.com/opaquevault/opaquevault/internal/names"
)

// ScopeLister is an optional interface of a [Source] that can list the
// environments its key opens (an account key: every env of the account).
// SCOPES uses it when the agent is neither pinned to a scope nor holds
// scoped keys.
type ScopeLister interface {
	Scopes(ctx context.Context) ([]localapi.Scope, error)
}

// Writer is an optional interface of a [Source] that can write: Set makes
// name's value in app/env value (a new version), creating the app and env
// when create is set. It returns the new version and whether it created
// the app or env. value is the caller's, wiped after Set returns.
type Writer interface {
	Set(ctx context.Context, app, env, name string, value []byte, create bool) (version uint64, created bool, err error)
}

// Bounds of GENERATE.
const (
	maxGenBytes = 512  // hex and base64: random bytes
	maxGenChars = 1024 // alphanumeric: characters
)

// more answers SCOPES, INFO and GENERATE: requests without values on the
// wire, for `ov mcp serve`.
func (a *agentState) more(ctx context.Context, log *logrus.Entry, req *localapi.Request) *localapi.Response {
	if req.Op == localapi.OpScopes {
		return a.scopes(ctx, log)
	}
	app, env, err := normalizeScope(req.App, req.Env)
	if err != nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)}
	}
	log = log.WithFields(logrus.Fields{"app": app, "env": env})
	if a.cfg.App != "" && (app != a.cfg.App || env != a.cfg.Env) {
		log.Warn("request for a scope this agent does not serve")
		return deny("this agent serves %s/%s only, not %s/%s", a.cfg.App, a.cfg.Env, app, env)
	}
	var g *localapi.Generate
	if req.Op == localapi.OpGenerate {
		if g = req.Generate; g == nil {
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "generate: no name given")}
		}
		if err := checkGenerate(g); err != nil {
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)}
		}
	}

	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	if a.key == nil || a.src == nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is locked")}
	}
	if a.key.Kind == KeyScoped && !hasScope(a.key, app, env) {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is not unlocked for %s/%s", app, env)}
	}
	if g != nil {
		return a.generate(ctx, log, app, env, g)
	}
	e, err := a.src.Read(ctx, app, env)
	if err != nil {
		return a.readFailed(log, app, env, err)
	}
	defer e.Wipe()
	in := &localapi.EnvInfo{Seq: e.Seq, UpdatedAt: e.UpdatedAt, Secrets: make([]localapi.SecretInfo, len(e.Secrets))}
	for i, s := range e.Secrets {
		in.Secrets[i] = localapi.SecretInfo{Name: s.Name, Version: s.Version}
	}
	log.WithField("secrets", len(in.Secrets)).Info("described env")
	return &localapi.Response{Info: in}
}

func (a *agentState) scopes(ctx context.Context, log *logrus.Entry) *localapi.Response {
	if a.cfg.App != "" {
		return &localapi.Response{Scopes: []localapi.Scope{{App: a.cfg.App, Env: a.cfg.Env}}}
	}
	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	if a.key == nil || a.src == nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is locked")}
	}
	if a.key.Kind == KeyScoped {
		out := make([]localapi.Scope, 0, len(a.key.Env))
		for _, e := range a.key.Env {
			out = append(out, e.Scope)
		}
		return &localapi.Response{Scopes: out}
	}
	l, ok := a.src.(ScopeLister)
	if !ok {
		return deny("this agent's %s key cannot list the apps it opens", a.key.Kind)
	}
	out, err := l.Scopes(ctx)
	if err != nil {
		log.WithError(err).Warn("cannot list scopes")
		code := localapi.CodeOf(err)
		if code == localapi.CodeInternal {
			code = localapi.CodeServerDown
		}
		return &localapi.Response{Err: localapi.Errorf(code, "list apps: %v", err)}
	}
	slices.SortFunc(out, func(x, y localapi.Scope) int {
		if x.App != y.App {
			return cmpStr(x.App, y.App)
		}
		return cmpStr(x.Env, y.Env)
	})
	log.WithField("scopes", len(out)).Info("listed scopes")
	return &localapi.Response{Scopes: out}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkGenerate(g *localapi.Generate) error {
	if err := ovnames.Secret(g.Name); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	switch g.Kind {
	case localapi.KindHex, localapi.KindBase64:
		if g.Length < 16 || g.Length > maxGenBytes {
			return fmt.Errorf("generate %s: %s of %d random bytes: give 16 to %d", g.Name, g.Kind, g.Length, maxGenBytes)
		}
	case localapi.KindAlphanumeric:
		if g.Length < 16 || g.Length > maxGenChars {
			return fmt.Errorf("generate %s: %d alphanumeric characters: give 16 to %d", g.Name, g.Length, maxGenChars)
		}
	case localapi.KindUUID:
		if g.Length != 0 && g.Length != 36 {
			return fmt.Errorf("generate %s: a uuid has 36 characters, not %d", g.Name, g.Length)
		}
	default:
		return fmt.Errorf("generate %s: unknown kind %q (hex, base64, alphanumeric or uuid)", g.Name, g.Kind)
	}
	return nil
}

// generate makes a value of g's kind and has the source write it. Neither
// the value nor anything derived from it leaves the agent.
func (a *agentState) generate(ctx context.Context, log *logrus.Entry, app, env string, g *localapi.Generate) *localapi.Response {
	w, ok := a.src.(Writer)
	if !ok {
		log.Warn("generate refused: the key cannot write")
		return deny("this agent's %s key cannot write secrets: unlock it with the account key (`ov agent unlock`)", a.key.Kind)
	}
	v, err := generateValue(g.Kind, int(g.Length))
	if err != nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeInternal, "generate %s: %v", g.Name, err)}
	}
	defer clear(v)
	version, created, err := w.Set(ctx, app, env, g.Name, v, g.Create)
	if err != nil {
		r := a.readFailed(log, app, env, err)
		r.Err.Message = fmt.Sprintf("set %s in %s/%s: %v", g.Name, app, env, err)
		return r
	}
	log.WithFields(logrus.Fields{"secret": g.Name, "kind": g.Kind, "version": version}).Info("set a generated secret")
	return &localapi.Response{Generated: &localapi.Generated{Version: version, Created: created}}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// generateValue returns a new value of kind: n random bytes as hex or
// base64, n characters of [A-Za-z0-9] (uniform, by rejection), or a
// version 4 UUID.
func generateValue(kind string, n int) ([]byte, error) {
	switch kind {
	case localapi.KindHex, localapi.KindBase64:
		raw := make([]byte, n)
		defer clear(raw)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if kind == localapi.KindHex {
			out := make([]byte, hex.EncodedLen(n))
			hex.Encode(out, raw)
			return out, nil
		}
		out := make([]byte, base64.StdEncoding.EncodedLen(n))
		base64.StdEncoding.Encode(out, raw)
		return out, nil
	case localapi.KindAlphanumeric:
		out := make([]byte, 0, n)
		var buf [64]byte
		defer clear(buf[:])
		for len(out) < n {
			if _, err := rand.Read(buf[:]); err != nil {
				clear(out)
				return nil, err
			}
			for _, b := range buf {
				if b < 248 && len(out) < n { // 248 = 4*62: no bias
					out = append(out, alnum[b%62])
				}
			}
		}
		return out, nil
	case localapi.KindUUID:
		var u [16]byte
		defer clear(u[:])
		if _, err := rand.Read(u[:]); err != nil {
			return nil, err
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		out := make([]byte, 36)
		hex.Encode(out[0:8], u[0:4])
		out[8] = '-'
		hex.Encode(out[9:13], u[4:6])
		out[13] = '-'
		hex.Encode(out[14:18], u[6:8])
		out[18] = '-'
		hex.Encode(out[19:23], u[8:10])
		out[23] = '-'
		hex.Encode(out[24:], u[10:])
		return out, nil
	}
	return nil, errors.New("unknown kind " + kind)
}
