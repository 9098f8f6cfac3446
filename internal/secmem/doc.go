// SPDX-License-Identifier: Apache-2.0

// Package secmem holds key bytes in memory that the Go runtime never sees, and
// hardens the process that holds them. It never copies key bytes into the Go
// heap, never prints them, and never puts them in an error.
//
// # What it does
//
// A [Buf] is backed by an anonymous private mapping (mmap) outside the Go heap:
// the garbage collector never moves or copies it, so [Buf.Wipe] and
// [Buf.Destroy] erase the only copy. The pages are locked with mlock so they
// are not swapped out (if that fails, for example because RLIMIT_MEMLOCK is too
// low, [OnMlockFailure] is told once and the buffer is still usable), excluded
// from core dumps with MADV_DONTDUMP, and zeroed in forked children with
// MADV_WIPEONFORK (Linux 4.14 and later; best effort). A Buf prints as
// "[redacted]", is not comparable with ==, and refuses to be marshalled.
//
// [Harden] makes the process non-dumpable (PR_SET_DUMPABLE 0: no core file,
// /proc/PID/mem and /proc/PID/environ become root-only, same-uid processes can
// no longer ptrace it) and sets RLIMIT_CORE to 0. execve resets dumpability, so
// a child started by `ov run` is dumpable again.
//
// # What Go cannot wipe
//
// Wiping memory in Go is best effort. Only the bytes inside a Buf are under our
// control; copies made elsewhere stay in memory until the allocator reuses it:
//
//   - Strings are immutable and cannot be cleared. Passwords are read as []byte
//     (golang.org/x/term.ReadPassword) and must never become a string; secret
//     values are never decoded into strings by encoding/json.
//   - Copies made by append or slice growth, bufio and fmt buffers, and
//     conversions land on the Go heap. Bytes returns a slice whose capacity
//     equals its length, so an append copies instead of writing past the end;
//     that copy is then outside our reach. Read and write key bytes in place.
//   - Library state lives on the Go heap: chacha20poly1305.NewX copies the key
//     into its own struct, argon2.IDKey allocates its whole memory arena
//     (password-dependent) and returns it to the GC unzeroed, and crypto/ecdh
//     and crypto/ed25519 private keys are ordinary heap objects. Scope them
//     tightly, drop references as soon as possible, and call runtime.GC after
//     an unlock. The Argon2 arena is far larger than any sane RLIMIT_MEMLOCK,
//     so it can reach swap: run the agent with MemorySwapMax=0 and use
//     encrypted swap or zram.
//   - Goroutine stacks are copied when they grow, leaving old copies of any
//     key bytes held in local variables (arrays, register spills) behind.
//     Keep key material in a Buf rather than in stack arrays. Go 1.26's
//     experimental runtime/secret (GOEXPERIMENT=runtimesecret, linux/amd64
//     and linux/arm64) erases registers, stack and heap allocations used by a
//     function; the KDF and unwrap calls should run inside it where available.
//   - A Buf's pages are shared with nobody, but the kernel may still hold
//     copies (page cache of the key file, pipe buffers). memfd_secret(2) would
//     also remove the pages from the kernel's direct map; it is not used yet.
//
// The result: a key read with the credentials package lives in exactly one
// locked, non-dumpable page until Destroy; keys derived or expanded by the
// crypto libraries have heap copies with a lifetime bounded by the GC.
//
// Wiping is also no substitute for process isolation: root, and anything that
// can ptrace a dumpable process of the same uid, can read it.
package secmem
