// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package localapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/opaquevault/opaquevault/internal/peercred"
)

// Client talks to the agent at Endpoint. Each call is one connection.
type Client struct {
	Endpoint *Endpoint
	// Timeout bounds each read and write (default [Timeout]).
	Timeout time.Duration
}

// NewClient returns a Client for ep.
func NewClient(ep *Endpoint) *Client { return &Client{Endpoint: ep} }

// Dial connects to the agent after checking the socket's directory (see
// [CheckSocketDir]), then checks that the listening socket was created by
// one of ep.ListenerUIDs. Errors match [ErrUnreachable] (no agent there) or
// [ErrUntrusted] (a check failed).
func Dial(ctx context.Context, ep *Endpoint) (net.Conn, error) {
	if err := CheckSocketDir(ep); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("connect to agent at %s: %w: %w", ep.Socket, ErrUnreachable, err)
		}
		return nil, fmt.Errorf("connect to agent at %s: %w", ep.Socket, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ep.Socket)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("connect to agent at %s: %w", ep.Socket, ErrUnreachable)
		}
		return nil, fmt.Errorf("connect to agent at %s: %w: %w", ep.Socket, ErrUnreachable, err)
	}
	p, err := peercred.Of(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to agent at %s: %w: %w", ep.Socket, ErrUntrusted, err)
	}
	if !slices.Contains(ep.ListenerUIDs, p.UID) {
		c.Close()
		return nil, fmt.Errorf("connect to agent at %s: listening socket created by uid %d, want %s: %w",
			ep.Socket, p.UID, joinUIDs(ep.ListenerUIDs), ErrUntrusted)
	}
	return c, nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return Timeout
}

func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		return cd
	}
	return t
}

// Do sends req and returns the answer. An error answered by the agent is
// returned as an [*Error] (and the response is nil); other errors match
// [ErrUnreachable], [ErrUntrusted] or [ErrProtocol], or are I/O errors. The
// caller must Wipe a GET response.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	f, err := MarshalRequest(req)
	if err != nil {
		return nil, err
	}
	defer clear(f)
	conn, err := Dial(ctx, c.Endpoint)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = conn.SetWriteDeadline(deadline(ctx, c.timeout()))
	if _, err := conn.Write(f); err != nil {
		return nil, c.ioErr(ctx, "send "+req.Op.String(), err)
	}
	clear(f)
	_ = conn.SetReadDeadline(deadline(ctx, c.timeout()))
	p, err := ReadFrame(conn)
	if err != nil {
		return nil, c.ioErr(ctx, "read answer to "+req.Op.String(), err)
	}
	resp, err := ParseResponse(req.Op, p)
	if err != nil {
		clear(p)
		return nil, err
	}
	if resp.Err != nil {
		clear(p)
		return nil, resp.Err
	}
	return resp, nil
}

func (c *Client) ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: agent did not answer within %v: %w", what, c.timeout(), ErrUnreachable)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Status asks the agent for its state.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	r, err := c.Do(ctx, &Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	return r.Status, nil
}

// List returns the names of the secrets of app/env, never values.
func (c *Client) List(ctx context.Context, app, env string) ([]string, error) {
	r, err := c.Do(ctx, &Request{Op: OpList, App: app, Env: env})
	if err != nil {
		return nil, err
	}
	return r.Names, nil
}

// Get returns the values of exactly names (at least one, no duplicates) in
// app/env. The agent answers all of them or an error matching [ErrNotFound]
// that names the missing ones; an answer with any other set of names is
// refused ([ErrProtocol]). Values are slices of one buffer: call Wipe on the
// response when done.
func (c *Client) Get(ctx context.Context, app, env string, names []string) (*Response, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("get secrets of %s/%s: no names given: %w", app, env, ErrBadRequest)
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if want[n] {
			return nil, fmt.Errorf("get secrets of %s/%s: %q asked twice: %w", app, env, n, ErrBadRequest)
		}
		want[n] = true
	}
	r, err := c.Do(ctx, &Request{Op: OpGet, App: app, Env: env, Names: names})
	if err != nil {
		return nil, err
	}
	ok := len(r.Secrets) == len(names)
	for _, s := range r.Secrets {
		if !want[s.Name] {
			ok = false
			break
		}
		delete(want, s.Name)
	}
	if !ok {
		r.Wipe()
		return nil, fmt.Errorf("get secrets of %s/%s: agent answered other names than asked: %w", app, env, ErrProtocol)
	}
	return r, nil
}

// Lookup returns the secret called name from a GET response.
func (r *Response) Lookup(name string) (Secret, bool) {
	for _, s := range r.Secrets {
		if s.Name == name {
			return s, true
		}
	}
	return Secret{}, false
}

// Lock makes the agent wipe its keys.
func (c *Client) Lock(ctx context.Context) error {
	_, err := c.Do(ctx, &Request{Op: OpLock})
	return err
}

// Unlock hands u to the agent. Call it only with an endpoint whose checks
// passed ([Dial] does them), and wipe u afterwards; the encoded frame is
// cleared here.
func (c *Client) Unlock(ctx context.Context, u *Unlock) error {
	_, err := c.Do(ctx, &Request{Op: OpUnlock, Unlock: u})
	return err
}
