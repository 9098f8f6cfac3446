// SPDX-License-Identifier: Apache-2.0

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxResponse bounds what the client reads from one response.
const MaxResponse = 256 << 20

// Sentinel errors; an *Error matches them with errors.Is by its code.
var (
	ErrUnreachable  = errors.New("server unreachable")
	ErrUnauthorized = errors.New("credentials rejected")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrRateLimited  = errors.New("rate limited")
)

// Error is an error answered by the server.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, e.Code)
	}
	return e.Message
}

// Is maps the error's code to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Code == CodeUnauthorized
	case ErrForbidden:
		return e.Code == CodeForbidden
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrConflict:
		return e.Code == CodeConflict
	case ErrRateLimited:
		return e.Code == CodeRateLimited
	}
	return false
}

// UnreachableError is a transport failure: the server could not be reached or did not answer.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("reach server %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// Client speaks the API. The zero value is not usable: use [NewClient].
type Client struct {
	base  *url.URL // scheme http or https; for unix sockets, http with the socket in dial
	token string
	hc    *http.Client
	shown string

	ttl   time.Duration
	mu    sync.Mutex
	cache map[string]cached // GET answers by path, for ttl
}

type cached struct {
	body []byte
	at   time.Time
}

// ClientOptions tune [NewClient].
type ClientOptions struct {
	// Token is a device (ovd_…) or machine (ovm_…) token; empty for the unauthenticated calls.
	Token string
	// Timeout bounds every request (default 30s).
	Timeout time.Duration
	// Insecure allows plain http to a host that is not loopback.
	Insecure bool
	// Transport replaces the default transport (tests).
	Transport http.RoundTripper
	// CacheTTL, when positive, answers a GET from memory for this long after the server did. Only a
	// long-running process that re-reads the same environments (the agent) sets it; every answer is
	// still verified by its reader each time, and any write clears the cache.
	CacheTTL time.Duration
}

// NewClient returns a client for server, which is https://host[:port], http://127.0.0.1:port (plain
// http only to loopback unless opts.Insecure), or unix:///path/to/socket.
func NewClient(server string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("parse server URL %q: want https://host[:port], http://127.0.0.1:port or unix:///path", server)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	tr, _ := http.DefaultTransport.(*http.Transport)
	tr = tr.Clone()
	tr.Proxy = nil // a secrets API never goes through an environment-configured proxy
	c := &Client{token: opts.Token, shown: server, ttl: opts.CacheTTL, cache: map[string]cached{}}
	switch u.Scheme {
	case "https":
		c.base = &url.URL{Scheme: "https", Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
	case "http":
		if !opts.Insecure && !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("refuse plain http to %s: only loopback may be reached without TLS", u.Host)
		}
		c.base = &url.URL{Scheme: "http", Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("parse server URL %q: no socket path", server)
		}
		c.base = &url.URL{Scheme: "http", Host: "unix"}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	default:
		return nil, fmt.Errorf("parse server URL %q: unsupported scheme %q", server, u.Scheme)
	}
	var rt http.RoundTripper = tr
	if opts.Transport != nil {
		rt = opts.Transport
	}
	c.hc = &http.Client{Transport: rt, Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server returns the server URL the client was made for.
func (c *Client) Server() string { return c.shown }

// maxRetryAfter is the longest Retry-After the client waits out by itself.
const maxRetryAfter = 5 * time.Second

// maxAttempts bounds how often one call is sent when the server sheds it.
const maxAttempts = 4

// retryable reports whether err is a refusal made before the request was processed (429
// rate_limited, or 503 overloaded), so that sending it again is safe for every method.
func retryable(err error) (*Error, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return nil, false
	}
	ok := e.Code == CodeRateLimited && e.Status == http.StatusTooManyRequests || e.Code == CodeOverloaded && e.Status == http.StatusServiceUnavailable
	return e, ok && e.RetryAfter <= maxRetryAfter
}

// backoff is the wait before attempt n+1 (n ≥ 1): the server's Retry-After (at least 100 ms)
// doubled for each earlier retry, capped at maxRetryAfter, plus up to half of it at random, so that
// clients shed together do not come back together.
func backoff(retryAfter time.Duration, n int) time.Duration {
	d := max(retryAfter, 100*time.Millisecond) << (n - 1)
	d = min(d, maxRetryAfter)
	return d + rand.N(d/2+1)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	if c.ttl > 0 {
		if method != http.MethodGet {
			c.mu.Lock()
			clear(c.cache)
			c.mu.Unlock()
		} else if body, ok := c.fresh(path); ok {
			if out == nil {
				return nil
			}
			return json.Unmarshal(body, out)
		}
	}
	err := c.once(ctx, method, path, b, out)
	for n := 1; n < maxAttempts; n++ {
		e, ok := retryable(err)
		if !ok {
			break
		}
		t := time.NewTimer(backoff(e.RetryAfter, n))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		err = c.once(ctx, method, path, b, out)
	}
	return err
}

func (c *Client) once(ctx context.Context, method, path string, in []byte, out any) error {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	u := *c.base
	u.Path += path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.Path = c.base.Path + path[:i]
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{URL: c.shown, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return &UnreachableError{URL: c.shown, Err: stripURL(err)}
	}
	if len(data) > MaxResponse {
		return fmt.Errorf("read response of %s %s: larger than %d bytes", method, path, MaxResponse)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		} else {
			e.Code = codeForStatus(resp.StatusCode)
			if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout {
				return &UnreachableError{URL: c.shown, Err: fmt.Errorf("answered %s", resp.Status)}
			}
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				e.RetryAfter = time.Duration(n) * time.Second
			}
		}
		return e
	}
	if c.ttl > 0 && method == http.MethodGet {
		c.mu.Lock()
		c.cache[path] = cached{body: data, at: time.Now()}
		c.mu.Unlock()
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %v", method, path, err)
	}
	return nil
}

// stripURL keeps transport errors short: the URL is already in UnreachableError.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func codeForStatus(s int) string {
	switch s {
	case 400:
		return CodeBadRequest
	case 401:
		return CodeUnauthorized
	case 403:
		return CodeForbidden
	case 404:
		return CodeNotFound
	case 409:
		return CodeConflict
	case 413:
		return CodeTooLarge
	case 422:
		return CodeTooMany
	case 429:
		return CodeRateLimited
	case 503:
		return CodeUnavailable
	}
	return CodeInternal
}

// Health calls GET /healthz.
func (c *Client) Health(ctx context.Context) error { return c.do(ctx, "GET", "/healthz", nil, nil) }

// Register creates an account and its first device.
func (c *Client) Register(ctx context.Context, r *RegisterRequest) (*AccountBundle, error) {
	var out AccountBundle
	return &out, c.do(ctx, "POST", "/v1/register", r, &out)
}

// LoginParams fetches the KDF parameters for an email.
func (c *Client) LoginParams(ctx context.Context, email string) (*LoginParams, error) {
	var out LoginParams
	return &out, c.do(ctx, "POST", "/v1/login/params", &LoginParamsRequest{Email: email}, &out)
}

// Login enrols a new device.
func (c *Client) Login(ctx context.Context, r *LoginRequest) (*AccountBundle, error) {
	var out AccountBundle
	return &out, c.do(ctx, "POST", "/v1/login", r, &out)
}

// Account fetches the account bundle.
func (c *Client) Account(ctx context.Context) (*AccountBundle, error) {
	var out AccountBundle
	return &out, c.do(ctx, "GET", "/v1/account", nil, &out)
}

// ChangePassword replaces the password wrap of the account key.
func (c *Client) ChangePassword(ctx context.Context, r *PasswordChange) error {
	return c.do(ctx, "PUT", "/v1/account/password", r, nil)
}

// Devices lists device keys.
func (c *Client) Devices(ctx context.Context) (*DeviceList, error) {
	var out DeviceList
	return &out, c.do(ctx, "GET", "/v1/devices", nil, &out)
}

// RevokeDevice revokes a device key by id, or the calling device with "self".
func (c *Client) RevokeDevice(ctx context.Context, keyID string) error {
	return c.do(ctx, "DELETE", "/v1/devices/"+url.PathEscape(keyID), nil, nil)
}

// Apps lists apps with their envs.
func (c *Client) Apps(ctx context.Context) (*AppList, error) {
	var out AppList
	return &out, c.do(ctx, "GET", "/v1/apps", nil, &out)
}

// CreateApp creates an app.
func (c *Client) CreateApp(ctx context.Context, r *NewApp) (*App, error) {
	var out App
	return &out, c.do(ctx, "POST", "/v1/apps", r, &out)
}

// CreateEnv creates an env in an app.
func (c *Client) CreateEnv(ctx context.Context, appID string, r *NewEnv) (*Env, error) {
	var out Env
	return &out, c.do(ctx, "POST", "/v1/apps/"+url.PathEscape(appID)+"/envs", r, &out)
}

// Env fetches the newest state of an env.
func (c *Client) Env(ctx context.Context, envID string) (*EnvState, error) {
	var out EnvState
	return &out, c.do(ctx, "GET", "/v1/envs/"+url.PathEscape(envID), nil, &out)
}

// Commit writes an env with a compare-and-swap on its manifest sequence.
func (c *Client) Commit(ctx context.Context, envID string, r *Commit) (*CommitResult, error) {
	var out CommitResult
	return &out, c.do(ctx, "PUT", "/v1/envs/"+url.PathEscape(envID)+"/manifest", r, &out)
}

// Audit lists the newest audit entries.
func (c *Client) Audit(ctx context.Context, limit int) (*AuditList, error) {
	var out AuditList
	return &out, c.do(ctx, "GET", "/v1/audit?limit="+strconv.Itoa(limit), nil, &out)
}

// CreateMachine registers a machine key.
func (c *Client) CreateMachine(ctx context.Context, r *NewMachine) error {
	return c.do(ctx, "POST", "/v1/machines", r, nil)
}

// Machines lists machine keys.
func (c *Client) Machines(ctx context.Context) (*MachineList, error) {
	var out MachineList
	return &out, c.do(ctx, "GET", "/v1/machines", nil, &out)
}

// RevokeMachine deletes a machine (soft revoke).
func (c *Client) RevokeMachine(ctx context.Context, machineID string) error {
	return c.do(ctx, "DELETE", "/v1/machines/"+url.PathEscape(machineID), nil, nil)
}

// PutMachineWraps replaces a machine's wraps.
func (c *Client) PutMachineWraps(ctx context.Context, machineID string, r *MachineWraps) error {
	return c.do(ctx, "PUT", "/v1/machines/"+url.PathEscape(machineID)+"/wraps", r, nil)
}

// Revocations fetches the account's signed machine revocation list; ErrNotFound when there is none.
func (c *Client) Revocations(ctx context.Context) (*Signed, error) {
	var out Signed
	return &out, c.do(ctx, "GET", "/v1/revocations", nil, &out)
}

// PutRevocations stores a new signed revocation list; ErrConflict when its seq is not above the stored one.
func (c *Client) PutRevocations(ctx context.Context, r *Signed) error {
	return c.do(ctx, "PUT", "/v1/revocations", r, nil)
}

// PutEnvAccess stores the signed allowed set of an environment epoch (the current one, or the next
// one just before a rotation commits it); ErrConflict when its version is not above the stored one.
func (c *Client) PutEnvAccess(ctx context.Context, envID string, epoch uint32, r *Signed) error {
	return c.do(ctx, "PUT", "/v1/envs/"+url.PathEscape(envID)+"/access/"+strconv.FormatUint(uint64(epoch), 10), r, nil)
}

// MachineSelf fetches what a machine needs about itself (machine token).
func (c *Client) MachineSelf(ctx context.Context) (*MachineSelf, error) {
	var out MachineSelf
	return &out, c.do(ctx, "GET", "/v1/machine", nil, &out)
}

func (c *Client) fresh(path string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[path]
	if !ok || time.Since(e.at) > c.ttl {
		delete(c.cache, path)
		return nil, false
	}
	return e.body, true
}
