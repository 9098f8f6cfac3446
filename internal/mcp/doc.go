// SPDX-License-Identifier: Apache-2.0

// Package mcp is the Model Context Protocol server behind `ov mcp serve`: it
// lets an AI coding assistant (Claude Code, or any MCP client) list apps,
// environments and secret names, check which secrets exist, run commands
// with secrets in their environment, and create secrets with generated
// values, over stdio ([Serve]). Secrets come from a [Source], normally the
// local agent ([NewAgentSource]).
//
// It must never return a secret value to the model. Tool results, tool
// errors and everything else written to the protocol stream carry names only;
// the output of a command is passed through a [Redactor] built from the
// values injected into it, which replaces each value, in the encodings
// listed there, with "[redacted:NAME]", and the result is checked again in
// its wire encoding before it is sent. set_secret_from_generator has the
// agent generate the value, so that it never leaves the agent. Every call
// is logged (tool, app, env, names, exit code; never a value) to the log
// given in [Options], which `ov mcp serve` sends to the journal and stderr;
// nothing is logged over MCP.
//
// # Commands cannot reach the agent
//
// Each command runs in the sandbox of package sandbox: new user, mount and
// PID namespaces in which the agent's sockets, the rendezvous file, /etc/ov,
// the user's runtime directory and ov's config, state and cache directories
// are covered, with a private /proc and no capabilities. A command cannot
// escape it by forking, re-parenting, daemonizing or renaming itself, and
// nothing it starts outlives it. Where the sandbox cannot be set up,
// run_with_secrets refuses, unless [Isolation.Unisolated] (the user's
// explicit `--allow-unisolated-commands`). The agent knows nothing of MCP.
//
// # What redaction does not do
//
// Redaction guards against accidental exposure (a command that prints its
// configuration, a stack trace holding a connection string, `env`, a hex
// dump). A command chosen to leak a value can always do so: reverse it,
// compress or encrypt it, send it over the network. [Options.AllowCommands]
// limits which command lines the model may run, and [Options.Approve] puts a
// person in front of every injection; allowing a shell or an interpreter
// allows anything. On Linux, [Serve] also makes its process non-dumpable, so
// that a command run without the sandbox cannot write around the redactor
// through /proc/PPID/fd/1 or read the server's memory.
//
// # Short values
//
// A value shorter than [MinRedactLen] bytes (a port, a flag) is injected and
// its exact bytes are redacted, but not its encodings (they would match
// everywhere); the result of run_with_secrets names it in a note saying
// that it may be guessable from the output.
package mcp
