// SPDX-License-Identifier: Apache-2.0

package remote

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestFailedFirstWriteLeavesNothing: the server fails the commit of a first import, after the app
// and env were created by requests of their own. Nothing may be visible afterwards (the README's
// "all of it, or nothing"): no app, no env, no empty env to read; and the next import fills the
// same env rather than failing or creating a second one.
func TestFailedFirstWriteLeavesNothing(t *testing.T) {
	f := newFixture(t)
	v := f.vault()
	f.proxy.mu.Lock()
	f.proxy.fail = func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifest")
	}
	f.proxy.mu.Unlock()
	if _, err := v.Write(bg, "myapp", "production", true, set("A", "1", "B", "2")); err == nil {
		t.Fatal("the write succeeded through a failing commit")
	}
	f.proxy.mu.Lock()
	f.proxy.fail = nil
	f.proxy.mu.Unlock()

	raw, err := v.Client.Apps(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Apps) != 1 || len(raw.Apps[0].Envs) != 1 || raw.Apps[0].Envs[0].Seq != 0 {
		t.Fatalf("the failure was not injected between create and commit: %+v", raw.Apps)
	}
	placeholder := raw.Apps[0].Envs[0].EnvID
	if got := Published(raw); len(got.Apps) != 0 {
		t.Errorf("a never-committed env is listed: %+v", got.Apps)
	}
	if _, err := v.Read(bg, "myapp", "production"); !errors.Is(err, ErrAppNotFound) {
		t.Errorf("reading the env of the failed import: %v, want ErrAppNotFound", err)
	}
	if _, err := v.Write(bg, "myapp", "production", false, set("C", "3")); !errors.Is(err, ErrAppNotFound) && !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("a write that must not create found the env of the failed import: %v", err)
	}

	// The retry reuses the env.
	if _, err := v.Write(bg, "myapp", "production", true, set("A", "1", "B", "2")); err != nil {
		t.Fatal(err)
	}
	e, err := v.Read(bg, "myapp", "production")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Wipe()
	if got := values(e); len(got) != 2 || got["A"] != "1" || got["B"] != "2" {
		t.Errorf("after the retry: %v", got)
	}
	raw, err = v.Client.Apps(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Apps) != 1 || len(raw.Apps[0].Envs) != 1 || raw.Apps[0].Envs[0].EnvID != placeholder {
		t.Errorf("the retry did not reuse the env: %+v", raw.Apps)
	}
}
