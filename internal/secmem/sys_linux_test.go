// SPDX-License-Identifier: Apache-2.0

package secmem

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vmFlags returns the VmFlags line of the /proc/self/smaps entry containing
// addr, or "" when no mapping contains it.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && strings.Contains(line, "-") && !strings.Contains(line, ":  ") {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ""
}

func hasFlag(line, flag string) bool {
	return strings.Contains(" "+strings.TrimPrefix(line, "VmFlags:")+" ", " "+flag+" ")
}

func TestMappingIsLockedUndumpableWipedOnFork(t *testing.T) {
	b := newBuf(t, 32)
	addr := uintptr(unsafe.Pointer(&b.Bytes()[0]))
	flags := vmFlags(t, addr)
	if flags == "" {
		t.Fatal("buffer not found in /proc/self/smaps")
	}
	if !hasFlag(flags, "dd") {
		t.Errorf("mapping lacks dd (MADV_DONTDUMP): %s", flags)
	}
	if !hasFlag(flags, "wf") {
		t.Errorf("mapping lacks wf (MADV_WIPEONFORK): %s", flags)
	}
	if b.Locked() != hasFlag(flags, "lo") {
		t.Errorf("Locked()=%v but VmFlags: %s", b.Locked(), flags)
	}
	if os.Geteuid() == 0 && !b.Locked() {
		t.Error("root (CAP_IPC_LOCK) could not lock the buffer")
	}
}

func TestDestroyUnmaps(t *testing.T) {
	b, err := New(32)
	if err != nil {
		t.Fatal(err)
	}
	addr := uintptr(unsafe.Pointer(&b.Bytes()[0]))
	if vmFlags(t, addr) == "" {
		t.Fatal("buffer not found in /proc/self/smaps")
	}
	b.Destroy()
	if f := vmFlags(t, addr); f != "" {
		// Another mapping may have been placed at the same address; ours is gone
		// if the flags no longer show both of our advice bits.
		if hasFlag(f, "dd") && hasFlag(f, "wf") {
			t.Fatalf("mapping still present after Destroy: %s", f)
		}
	}
}

func TestMemlockLimit(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		t.Fatal(err)
	}
	cur, max, err := MemlockLimit()
	if err != nil || cur != rl.Cur || max != rl.Max {
		t.Fatalf("MemlockLimit() = %d, %d, %v; want %d, %d", cur, max, err, rl.Cur, rl.Max)
	}
}

// TestMlockFailureHook runs in a process without CAP_IPC_LOCK (uid 65534 when
// we are root) whose RLIMIT_MEMLOCK is 0: New must still work, and the hook
// must fire exactly once.
func TestMlockFailureHook(t *testing.T) {
	out := runHelper(t, "MlockFailure", os.Geteuid() == 0)
	if !strings.Contains(out, "hook: lock ") {
		t.Fatalf("hook message missing:\n%s", out)
	}
}

func TestHelperMlockFailure(t *testing.T) {
	inHelper(t)
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{}); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := MemlockLimit(); cur != 0 {
		t.Fatalf("RLIMIT_MEMLOCK is %d after setting 0", cur)
	}
	var calls []error
	OnMlockFailure = func(err error) { calls = append(calls, err) }
	for range 3 {
		b, err := New(32)
		if err != nil {
			t.Fatal(err)
		}
		if b.Locked() {
			t.Fatal("buffer locked despite RLIMIT_MEMLOCK 0 (running with CAP_IPC_LOCK?)")
		}
		copy(b.Bytes(), "still usable")
		if string(b.Bytes()[:12]) != "still usable" {
			t.Fatal("unlocked buffer does not work")
		}
		b.Destroy()
	}
	if len(calls) != 1 {
		t.Fatalf("hook called %d times, want once", len(calls))
	}
	msg := calls[0].Error()
	if !strings.Contains(msg, "RLIMIT_MEMLOCK is 0 bytes") {
		t.Errorf("hook error does not name the limit: %q", msg)
	}
	t.Logf("hook: %s", msg)
}

// TestHarden runs Harden in a child process (it cannot be undone) and checks
// the result through prctl and getrlimit there.
func TestHarden(t *testing.T) {
	runHelper(t, "Harden", false)
}

func TestHelperHarden(t *testing.T) {
	inHelper(t)
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 1 {
		t.Fatalf("before Harden: dumpable=%d, %v; want 1", d, err)
	}
	if err := Harden(); err != nil {
		t.Fatal(err)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
		t.Fatalf("after Harden: dumpable=%d, %v; want 0", d, err)
	}
	var before, rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil || rl.Cur != 0 {
		t.Fatalf("RLIMIT_CORE = %+v, %v; want a soft limit of 0", rl, err)
	}
	before = rl
	// /proc/self/* of a non-dumpable process is owned by root.
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/mem", &st); err == nil && os.Geteuid() != 0 && st.Uid != 0 {
		t.Errorf("/proc/self/mem owned by uid %d, want 0", st.Uid)
	}
	if err := Harden(); err != nil {
		t.Fatalf("second Harden: %v", err)
	}
	// The hard limit is kept, and the original soft limit comes back for a program ov executes.
	if err := RestoreCoreLimit(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil || rl.Max != before.Max || rl.Cur != coreAtStart.Cur {
		t.Fatalf("after RestoreCoreLimit: %+v, want %+v", rl, coreAtStart)
	}
}

var coreAtStart = func() unix.Rlimit {
	var rl unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_CORE, &rl)
	return rl
}()
