// SPDX-License-Identifier: Apache-2.0

// Package localapi is the protocol of the agent's unix socket, shared by the
// CLI (the client side: [Discover], [Client]) and daemon/agent (the server
// side: [ParseRequest], [MarshalResponse]).
//
// # Wire format
//
// One request per connection, one response, then the connection is closed.
// Each message is a frame: a big-endian u32 length, then that many bytes of
// payload, at most [MaxFrame] (1 MiB). Every read and write has a deadline
// ([Timeout], 5 s). Payloads are binary, not JSON, so that secret values
// and keys travel as bytes and are never turned into Go strings: a value is
// a u32 length and its bytes, and the client hands out slices of the
// received frame, which [Secrets.Wipe] clears. Strings (names, messages) are
// a u16 length and UTF-8 bytes; integers are big-endian.
//
//	request  = u8 version(1) ‖ u8 op ‖ body
//	  STATUS, LOCK: no body
//	  LIST:   str app ‖ str env
//	  GET:    str app ‖ str env ‖ u32 n ‖ n × str name
//	  UNLOCK: bytes account_id ‖ u32 ak_version ‖ bytes account_key ‖
//	          u32 n ‖ n × (str app ‖ str env ‖ bytes env_key)
//	response = u8 version(1) ‖ u8 0 ‖ body   (success, body by op)
//	         | u8 version(1) ‖ u8 1 ‖ str code ‖ str message
//
// GET returns the values of exactly the names asked for, or an error naming
// the missing ones; there is no "all": a caller that wants every secret
// lists the names first and asks for each of them. Error codes are
// [CodeLocked], [CodeDenied], [CodeNotFound], [CodeBadRequest],
// [CodeRateLimited] and [CodeInternal]; the client turns them into errors
// matching [ErrLocked], [ErrDenied], [ErrNotFound], [ErrBadRequest],
// [ErrRateLimited] and [ErrInternal].
//
// # Finding the agent, and trusting it
//
// [Discover] looks for the root-owned rendezvous file /etc/ov/agent.socket
// written by `ov agent install` (one line: version=1 socket=PATH
// listener_uids=UID,…). The file and every directory above it must be owned
// by root and not writable by group or others, and so must the socket's
// directory; after connect, the uid that created the listening socket
// (SO_PEERCRED on the client's end: systemd, uid 0, under socket activation)
// must be one of listener_uids. A process running as the same user can
// therefore neither redirect the client nor stand in for the agent.
//
// Without a rendezvous file it falls back to $XDG_RUNTIME_DIR/ov/agent.sock
// (the user's agent: `ov agent start`), in a 0700 directory owned by the
// user, created by a listener of the user's own uid. That is weaker: any
// process of the same user can replace that socket; [Endpoint.System] is
// false and [Endpoint.Guarantee] says so.
//
// The package never logs, and never puts a key or a value in an error.
package localapi
