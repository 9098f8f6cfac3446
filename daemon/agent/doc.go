// SPDX-License-Identifier: Apache-2.0

// Package agent is `ov agent serve`: a daemon that holds a key in locked
// memory and answers, over a unix socket (internal/localapi), with the
// verified, decrypted secrets of the environments that key opens.
//
// It never returns a value to anyone but its own uid, never returns values
// that were not asked for by name, never logs or returns a key or a value,
// and never writes a key to disk.
//
// # Keys
//
// The key comes from systemd (LoadCredential=ov-machine-key:/etc/ov/app.key,
// read from $CREDENTIALS_DIRECTORY with the checks of package credentials)
// or from an UNLOCK request (the account key, or scoped environment keys,
// that `ov agent unlock` derived from the password). It is kept in a
// [secmem.Buf] and lent to a [Source], built by the caller's [Opener], which
// fetches, verifies and decrypts an environment. LOCK, SIGTERM and a failed
// reload wipe it.
//
// # Who is served
//
// Every connection's peer is read with SO_PEERCRED right after accept,
// before a byte of it is read. The agent's own uid may use every request;
// root may use STATUS and LOCK; everyone else is refused and logged with
// OV_PEER_UID and OV_PEER_PID, and nothing of its request is kept.
// Connections are capped in total and per uid, with a share kept for the
// agent's uid, and request buffers grow with the bytes that arrive, so the
// memory another uid can make the agent hold is bounded. LIST, GET and
// refused requests are rate limited per uid (token bucket, 30 a minute,
// burst 10); STATUS, LOCK and UNLOCK from allowed peers are not.
//
// The local policy of crypto.md §4.5 ([Limits]): repeated policy denials
// lock the agent, a key handed over by UNLOCK is wiped when idle (STATUS=
// says when), reading many distinct secrets of one scope writes a warning,
// and audit lines carry the peer's executable, verified through a pidfd
// (SO_PEERPIDFD) where the kernel has it.
//
// # systemd
//
// The agent takes its socket from systemd (FileDescriptorName=agent) or
// binds one itself ([Listen]: 0600, refusing to replace a live agent). It
// sends READY=1 once the key is loaded (or with STATUS=locked when it waits
// for UNLOCK) and the listeners are serving; STATUS= follows every change;
// SIGHUP re-reads the credential between RELOADING=1 and READY=1; SIGTERM
// sends STOPPING=1, drains connections and wipes the key; WATCHDOG=1 is sent
// at half of WatchdogSec=.
//
// # D-Bus
//
// On Linux it owns com.opaquevault.Agent1 at /com/opaquevault/Agent1 on the
// system bus (the session bus for a user agent), with Status() → s, Lock(),
// Reload() and the signal StateChanged(s). Lock and Reload are authorized
// by polkit (com.opaquevault.agent.lock, com.opaquevault.agent.reload) and
// denied on any polkit error.
//
// # Restarts
//
// With [Config.RestartDir] ([DefaultRestartDir] for the system agent), the
// agent loads root-owned policies (RESTART.service.conf: app, env, names,
// action, interval, order, timeout), long-polls the server for commits to
// their envs ([EnvWatcher]), reads and verifies the env again with its key,
// and asks systemd ([UnitManager]: TryRestartUnit or ReloadOrTryRestartUnit)
// to restart the units whose listed names changed version in the verified
// manifest, one after another, at most once per interval each. A change the
// verified manifest does not show restarts nothing. See docs/agent.md.
package agent
