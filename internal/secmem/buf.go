// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package secmem

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// OnMlockFailure is called, if set, once per process the first time a [Buf]
// cannot be locked into memory (typically because RLIMIT_MEMLOCK is too low
// and the process lacks CAP_IPC_LOCK). The buffer is still returned and works;
// it may just be written to swap. The error says which limit applies and never
// contains key bytes. Set it at the start of main, before the first [New];
// it is not safe to change concurrently with New.
var OnMlockFailure func(err error)

var mlockReported atomic.Bool

func reportMlockFailure(size int, err error) {
	f := OnMlockFailure
	if f == nil || !mlockReported.CompareAndSwap(false, true) {
		return
	}
	limit := "unknown"
	if cur, _, lerr := MemlockLimit(); lerr == nil {
		limit = FormatLimit(cur)
	}
	f(fmt.Errorf("lock %d bytes of key memory: %w (RLIMIT_MEMLOCK is %s; key bytes may reach swap; raise LimitMEMLOCK= or ulimit -l)", size, err, limit))
}

// Buf is a fixed-size buffer for key material, allocated outside the Go heap
// with mmap, locked with mlock where the limit allows it, excluded from core
// dumps and wiped in forked children (see the package documentation).
//
// A Buf is not comparable with == (use [Buf.Equal]), prints as "[redacted]"
// with every fmt verb, and refuses to be marshalled. Always call
// [Buf.Destroy] when done, usually with defer. A cleanup attached to the Buf
// releases it if it becomes unreachable without Destroy, but that is a safety
// net only: it runs at an unpredictable time, if ever. It also means the Buf
// must stay reachable while a slice returned by [Buf.Bytes] is in use (a
// deferred Destroy guarantees that); otherwise the pages may be unmapped under
// the slice.
type Buf struct {
	_       [0]func() // not comparable
	r       *region
	cleanup runtime.Cleanup
}

type region struct {
	mu     sync.Mutex
	mem    []byte // the whole mapping, page-rounded; nil once released
	n      int
	locked bool
}

func (r *region) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return
	}
	clear(r.mem)
	runtime.KeepAlive(r.mem)
	if r.locked {
		_ = unix.Munlock(r.mem)
	}
	_ = unix.Munmap(r.mem) // only fails for a bad address, which would be a bug here
	r.mem, r.n, r.locked = nil, 0, false
}

// New returns a zeroed Buf of n bytes (n > 0). It fails only when the memory
// cannot be mapped; a failure to lock it is reported through
// [OnMlockFailure] and is not an error.
func New(n int) (*Buf, error) {
	page := os.Getpagesize()
	if n <= 0 || n > math.MaxInt-page {
		return nil, fmt.Errorf("allocate key memory: invalid size %d", n)
	}
	size := (n + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("allocate %d bytes of key memory: %w", n, err)
	}
	r := &region{mem: mem, n: n}
	if err := unix.Mlock(mem); err != nil {
		reportMlockFailure(size, err)
	} else {
		r.locked = true
	}
	advise(mem)
	b := &Buf{r: r}
	b.cleanup = runtime.AddCleanup(b, (*region).release, r)
	return b, nil
}

// Bytes returns the buffer's contents, to be read and written in place. Its
// capacity equals its length, so append copies (onto the Go heap) instead of
// writing past the end; do not append. After [Buf.Destroy] it returns nil.
func (b *Buf) Bytes() []byte {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if b.r.mem == nil {
		return nil
	}
	return b.r.mem[:b.r.n:b.r.n]
}

// Len returns the buffer's size in bytes, or 0 after [Buf.Destroy].
func (b *Buf) Len() int {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	return b.r.n
}

// Locked reports whether the buffer's pages are locked in memory (mlock
// succeeded). It returns false after [Buf.Destroy].
func (b *Buf) Locked() bool {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	return b.r.locked
}

// Wipe zeroes the contents and keeps the buffer usable. It may be called any
// number of times, also after [Buf.Destroy].
func (b *Buf) Wipe() {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	clear(b.r.mem)
	runtime.KeepAlive(b.r.mem)
}

// Destroy zeroes the contents, unlocks and unmaps the memory. It is idempotent
// and safe to call from several goroutines; any slice obtained from
// [Buf.Bytes] must no longer be used (touching it faults).
func (b *Buf) Destroy() {
	b.cleanup.Stop()
	b.r.release()
}

// Equal reports in constant time (for equal lengths) whether b and o hold the
// same bytes. A destroyed Buf equals nothing.
func (b *Buf) Equal(o *Buf) bool {
	x, y := b.Bytes(), o.Bytes()
	if x == nil || y == nil {
		return false
	}
	return subtle.ConstantTimeCompare(x, y) == 1
}

// errMarshal is returned by every marshalling method of Buf.
var errMarshal = errors.New("secmem: refusing to marshal key material")

// Format prints "[redacted]" for every verb (%v, %s, %x, %q, %#v, …).
func (Buf) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// LogValue keeps key bytes out of log/slog output.
func (Buf) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON always fails: key material is never serialized by accident.
func (Buf) MarshalJSON() ([]byte, error) { return nil, errMarshal }

// MarshalText always fails (it also covers encoding/xml and text encoders).
func (Buf) MarshalText() ([]byte, error) { return nil, errMarshal }

// MarshalBinary always fails (it also covers encoding/gob).
func (Buf) MarshalBinary() ([]byte, error) { return nil, errMarshal }

// MemlockLimit returns the soft (current) and hard (max) RLIMIT_MEMLOCK of the
// process in bytes, so that callers can print it; [Unlimited] means no limit.
// Processes with CAP_IPC_LOCK (root) may lock memory regardless of it.
func MemlockLimit() (cur, max uint64, err error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return 0, 0, fmt.Errorf("get RLIMIT_MEMLOCK: %w", err)
	}
	return uint64(rl.Cur), uint64(rl.Max), nil
}

// Unlimited is the value [MemlockLimit] reports for "no limit".
const Unlimited = uint64(unix.RLIM_INFINITY)

// FormatLimit renders a limit from [MemlockLimit] for messages, e.g. "64 KiB",
// "8 MiB" or "unlimited".
func FormatLimit(v uint64) string {
	switch {
	case v == Unlimited:
		return "unlimited"
	case v >= 1<<20 && v%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", v>>20)
	case v >= 1<<10 && v%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", v>>10)
	default:
		return fmt.Sprintf("%d bytes", v)
	}
}
