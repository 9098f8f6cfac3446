// SPDX-License-Identifier: Apache-2.0

// Package mcp is the Model Context Protocol server behind `ov mcp serve`: it
// lets an AI coding assistant (Claude Code) list apps, environments and
// secret names, and run commands with secrets in their environment, over
// stdio ([Serve]). Secrets come from a [Source], normally the local agent
// ([NewAgentSource]).
//
// It must never return a secret value to the model. Tool results, tool
// errors and everything else written to the protocol stream carry names only;
// the output of a command is passed through a [Redactor] built from the
// values injected into it, which replaces each value, in the encodings
// listed there, with "[redacted:NAME]", and the result is checked again in
// its wire encoding before it is sent. The server logs to stderr (never to
// the protocol stream, never a value) and sends no MCP log messages.
//
// # What redaction does not do
//
// Redaction guards against accidental exposure (a command that prints its
// configuration, a stack trace holding a connection string, `env`). A
// command chosen to leak a value can always do so: reverse it, encrypt it,
// send it over the network. [Options.AllowedCommands] limits which programs
// the model may start; allowing a shell or an interpreter allows anything.
// On Linux, [Serve] makes its process non-dumpable so that a command running
// as an ordinary user cannot write around the redactor through /proc/PPID/fd/1
// or read the server's memory; that does not hold when ov mcp serve runs as
// root (CAP_SYS_PTRACE ignores it), nor against a command that reopens the MCP
// client's own end of the pipe through the client's /proc entries (the client
// is an ordinary process of the same user). Run ov mcp serve as an ordinary
// user and restrict commands with [Options.AllowedCommands] where that matters.
//
// Commands may not read values from the agent themselves: ov itself is not
// allowed as a command, and the agent refuses names and values to any process
// that descends from an ov mcp serve (which makes itself a child subreaper so
// that daemonized descendants stay in its tree). A command can still reach
// out of the tree through another service (systemd-run, at, a login shell's
// existing processes); the allowlist is the control for that.
//
// # Short values
//
// A value shorter than [MinRedactLen] bytes (a port, a flag) is injected and
// its exact bytes are redacted, but not its encodings (they would match
// everywhere); the result of run_command names it in a note saying that it
// may be guessable from the output.
package mcp
