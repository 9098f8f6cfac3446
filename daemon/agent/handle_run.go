// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/opaquevault/opaquevault/internal/localapi"
	"github.com/opaquevault/opaquevault/internal/remote"
)

// runOff makes the agent answer RUN as an agent older than RUN does (see
// [DisableRunForTest]).
var runOff atomic.Bool

// DisableRunForTest makes agents started afterwards in this process answer
// RUN as an older agent does (an unknown op), so that tests can check that
// a newer ov falls back to STATUS, LIST and GET against the real agent. It
// panics outside a test binary.
func DisableRunForTest() {
	if !testing.Testing() {
		panic("agent: DisableRunForTest called outside a test binary")
	}
	runOff.Store(true)
}

// unknownOpAnswer is what an agent older than RUN answers to it: exactly
// its "unknown op" decode error.
func unknownOpAnswer(op localapi.Op) *localapi.Response {
	err := fmt.Errorf("decode request: unknown op %d: %w", uint8(op), localapi.ErrProtocol)
	return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)}
}

// run answers RUN: under one read lock, the status and, when the agent
// serves app/env, its secrets (names, or all of them). Locked, or pinned
// to another env, is answered with the status and Served false, as STATUS
// would tell it: no denial, no lockout count. Everything else is as GET.
// The answer points into the decrypted environment: the caller must call
// done after writing it.
func (a *agentState) run(ctx context.Context, log *logrus.Entry, req *localapi.Request) (resp *localapi.Response, done func()) {
	app, env, err := normalizeScope(req.App, req.Env)
	if err != nil {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeBadRequest, "%v", err)}, nil
	}
	log = log.WithFields(logrus.Fields{"app": app, "env": env})
	if len(req.Names) > 0 {
		if r := checkNames(req.Names); r != nil {
			return r, nil
		}
	}
	a.keyMu.RLock()
	defer a.keyMu.RUnlock()
	st := a.statusLocked()
	if a.cfg.App != "" && (app != a.cfg.App || env != a.cfg.Env) {
		log.Info("run not served: this agent serves another scope")
		return &localapi.Response{Status: st, Run: &localapi.RunResult{}}, nil
	}
	if a.key == nil || a.src == nil {
		log.Debug("run not served: locked")
		return &localapi.Response{Status: st, Run: &localapi.RunResult{}}, nil
	}
	if a.key.Kind == KeyScoped && !hasScope(a.key, app, env) {
		return &localapi.Response{Err: localapi.Errorf(localapi.CodeLocked, "agent is not unlocked for %s/%s", app, env)}, nil
	}
	e, err := a.src.Read(ctx, app, env)
	if err != nil {
		return a.readFailed(log, app, env, err), nil
	}
	wipe := true
	defer func() {
		if wipe {
			e.Wipe()
		}
	}()
	var out []localapi.Secret
	if len(req.Names) == 0 {
		out = make([]localapi.Secret, len(e.Secrets))
		for i, s := range e.Secrets {
			out[i] = localapi.Secret{Name: s.Name, Version: s.Version, Value: s.Value}
		}
	} else {
		byName := make(map[string]*remote.Secret, len(e.Secrets))
		for i := range e.Secrets {
			byName[e.Secrets[i].Name] = &e.Secrets[i]
		}
		var missing []string
		out = make([]localapi.Secret, 0, len(req.Names))
		for _, n := range req.Names {
			s, ok := byName[n]
			if !ok {
				missing = append(missing, n)
				continue
			}
			out = append(out, localapi.Secret{Name: s.Name, Version: s.Version, Value: s.Value})
		}
		if len(missing) > 0 {
			log.WithField("missing", strings.Join(missing, ",")).Info("secrets not found")
			return &localapi.Response{Err: localapi.Errorf(localapi.CodeNotFound, "%s not found in %s/%s: %s",
				plural(len(missing), "secret"), app, env, quoteList(missing))}, nil
		}
	}
	log.WithField("secrets", strings.Join(secretNames(out), ",")).Info("served secrets")
	wipe = false // the caller wipes e after writing the answer
	return &localapi.Response{Status: st, Run: &localapi.RunResult{Served: true}, Secrets: out}, e.Wipe
}

func secretNames(s []localapi.Secret) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}
