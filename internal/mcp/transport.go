// SPDX-License-Identifier: Apache-2.0

package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxLine bounds one JSON-RPC message on stdin.
const maxLine = 16 << 20

// stdioTransport is MCP's stdio transport (one JSON-RPC message a line),
// written for two properties the SDK's IOTransport lacks:
//
//   - every request read before stdin closes is answered: end of input is
//     reported to the SDK only once each request read has had its answer
//     written (a client may send its requests and close stdin at once);
//   - a line that is not JSON gets a -32700 parse error, one that is JSON but
//     not a JSON-RPC message a -32600 error, and the server carries on.
type stdioTransport struct {
	in  io.Reader
	out io.Writer
}

func (t *stdioTransport) Connect(context.Context) (mcp.Connection, error) {
	c := &lineConn{out: t.out, pending: map[string]int{}, lines: make(chan lineMsg), closed: make(chan struct{})}
	c.idle = sync.NewCond(&c.mu)
	go c.readLoop(bufio.NewReaderSize(t.in, 64<<10))
	return c, nil
}

type lineMsg struct {
	b   []byte
	err error
}

type lineConn struct {
	out   io.Writer
	wmu   sync.Mutex
	lines chan lineMsg

	mu      sync.Mutex
	idle    *sync.Cond
	pending map[string]int // requests read and not yet answered, by id

	closeOnce sync.Once
	closed    chan struct{}
}

// readLoop sends each line of r (or the error that ended it) to c.lines.
func (c *lineConn) readLoop(r *bufio.Reader) {
	for {
		var line []byte
		var err error
		tooLong := false
		for {
			var frag []byte
			frag, err = r.ReadSlice('\n')
			if len(line)+len(frag) > maxLine {
				tooLong = true
				line = line[:0]
			} else {
				line = append(line, frag...)
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if tooLong {
			line = []byte{0} // not JSON: answered with a parse error
		}
		if len(bytes.TrimSpace(line)) > 0 {
			select {
			case c.lines <- lineMsg{b: line}:
			case <-c.closed:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			select {
			case c.lines <- lineMsg{err: err}:
			case <-c.closed:
			}
			return
		}
	}
}

func idKey(id jsonrpc.ID) string { return fmt.Sprintf("%T:%v", id.Raw(), id.Raw()) }

func (c *lineConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		var m lineMsg
		select {
		case m = <-c.lines:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, io.EOF
		}
		if m.err != nil {
			c.drain()
			return nil, m.err
		}
		msg, err := jsonrpc.DecodeMessage(m.b)
		if err != nil {
			c.replyError(m.b, err)
			continue
		}
		if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() {
			c.mu.Lock()
			c.pending[idKey(req.ID)]++
			c.mu.Unlock()
		}
		return msg, nil
	}
}

// drain waits until every request read has been answered, or the
// connection is closed.
func (c *lineConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) > 0 {
		select {
		case <-c.closed:
			return
		default:
		}
		c.idle.Wait()
	}
}

// replyError answers a line that is not a JSON-RPC message: -32700 when it
// is not JSON, -32600 when it is (with its id, when it has a usable one).
func (c *lineConn) replyError(line []byte, cause error) {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	code, msg := int64(jsonrpc.CodeParseError), "parse error: the line is not JSON"
	id := json.RawMessage("null")
	if json.Valid(line) {
		code, msg = jsonrpc.CodeInvalidRequest, "invalid request: not a JSON-RPC 2.0 message"
		if json.Unmarshal(line, &probe) == nil && len(probe.ID) > 0 {
			var v any
			if json.Unmarshal(probe.ID, &v) == nil {
				if _, err := jsonrpc.MakeID(v); err == nil {
					id = probe.ID
				}
			}
		}
	}
	_ = cause // not sent: it may quote the input
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   jsonrpc.Error   `json:"error"`
	}{"2.0", id, jsonrpc.Error{Code: code, Message: msg}})
	_ = c.writeLine(b)
}

func (c *lineConn) writeLine(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.out.Write(append(b, '\n'))
	return err
}

func (c *lineConn) Write(_ context.Context, msg jsonrpc.Message) error {
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	b, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	err = c.writeLine(b)
	if r, ok := msg.(*jsonrpc.Response); ok && r.ID.IsValid() {
		c.mu.Lock()
		k := idKey(r.ID)
		if c.pending[k]--; c.pending[k] <= 0 {
			delete(c.pending, k)
		}
		c.idle.Broadcast()
		c.mu.Unlock()
	}
	return err
}

func (c *lineConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.mu.Lock()
		c.idle.Broadcast()
		c.mu.Unlock()
	})
	return nil
}

func (c *lineConn) SessionID() string { return "" }
