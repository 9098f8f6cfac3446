// SPDX-License-Identifier: Apache-2.0

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EnvWatch answers GET /v1/envs/{env_id}/watch when the env's seq passed the one asked for.
type EnvWatch struct {
	Seq uint64 `json:"seq"`
}

// WatchWait is how long a watch waits on the server before it answers "no change".
const WatchWait = 30 * time.Second

// WatchEnv waits (a long poll of up to [WatchWait]) until envID's committed seq exceeds after. It
// returns the new seq and true, or after and false when the wait ended without a commit. The
// answer is a hint to read the env again, never trusted data: what changed is learned only from
// the verified manifest. A change clears the client's GET cache, so that the read that follows
// sees the commit.
func (c *Client) WatchEnv(ctx context.Context, envID string, after uint64) (uint64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, WatchWait+15*time.Second)
	defer cancel()
	path := fmt.Sprintf("/v1/envs/%s/watch?after=%d&wait=%d", envID, after, int(WatchWait/time.Second))
	var out EnvWatch
	status, err := c.longPoll(ctx, path, &out)
	if err != nil {
		return after, false, err
	}
	if status == http.StatusNoContent || out.Seq <= after {
		return after, false, nil
	}
	if c.ttl > 0 {
		c.mu.Lock()
		clear(c.cache)
		c.mu.Unlock()
	}
	return out.Seq, true, nil
}

// longPoll GETs path with a client that has no per-request timeout (ctx bounds it) and returns the
// status; a 200 body is decoded into out. Errors are those of every other call.
func (c *Client) longPoll(ctx context.Context, path string, out any) (int, error) {
	u := *c.base
	u.Path = c.base.Path + path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.Path = c.base.Path + path[:i]
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := &http.Client{Transport: c.hc.Transport, CheckRedirect: c.hc.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &UnreachableError{URL: c.shown, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, &UnreachableError{URL: c.shown, Err: stripURL(err)}
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		return 0, &UnreachableError{URL: c.shown, Err: fmt.Errorf("answered %s", resp.Status)}
	case resp.StatusCode >= 300:
		e := &Error{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		} else {
			e.Code = codeForStatus(resp.StatusCode)
		}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				e.RetryAfter = time.Duration(n) * time.Second
			}
		}
		return 0, e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return 0, fmt.Errorf("decode response of GET %s: %v", path, err)
	}
	return resp.StatusCode, nil
}
