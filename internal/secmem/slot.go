// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package secmem

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SlotSize is the size of one key slot.
const SlotSize = 32

// slots hands out 32-byte slots for keys from pages mapped outside the Go heap, locked where
// RLIMIT_MEMLOCK allows, excluded from core dumps and wiped in forked children. A page is never
// unmapped: freed slots are zeroed and reused.
var slots struct {
	mu    sync.Mutex
	free  []*[SlotSize]byte
	live  int
	pages [][]byte
}

// NewSlot returns a zeroed 32-byte slot outside the Go heap. Release it with [FreeSlot] once,
// after which it must not be used. If no memory can be mapped it falls back to the Go heap (the
// key still works; it just gets none of the protections).
func NewSlot() *[SlotSize]byte {
	slots.mu.Lock()
	defer slots.mu.Unlock()
	if len(slots.free) == 0 {
		page := os.Getpagesize()
		mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		if err != nil {
			slots.live++
			return new([SlotSize]byte)
		}
		if err := unix.Mlock(mem); err != nil {
			reportMlockFailure(page, err)
		}
		advise(mem)
		slots.pages = append(slots.pages, mem)
		for off := 0; off+SlotSize <= page; off += SlotSize {
			slots.free = append(slots.free, (*[SlotSize]byte)(unsafe.Pointer(&mem[off])))
		}
	}
	s := slots.free[len(slots.free)-1]
	slots.free = slots.free[:len(slots.free)-1]
	slots.live++
	return s
}

// FreeSlot zeroes a slot from [NewSlot] and returns it to the pool.
func FreeSlot(s *[SlotSize]byte) {
	if s == nil {
		return
	}
	clear(s[:])
	slots.mu.Lock()
	defer slots.mu.Unlock()
	slots.live--
	if inPages(s) {
		slots.free = append(slots.free, s)
	}
}

// LiveSlots reports how many slots are in use (tests look for leaks with it).
func LiveSlots() int {
	slots.mu.Lock()
	defer slots.mu.Unlock()
	return slots.live
}

// SlotLocked reports whether s lies in locked, mapped memory outside the Go heap.
func SlotLocked(s *[SlotSize]byte) bool {
	slots.mu.Lock()
	defer slots.mu.Unlock()
	return inPages(s)
}

func inPages(s *[SlotSize]byte) bool {
	p := uintptr(unsafe.Pointer(s))
	for _, pg := range slots.pages {
		start := uintptr(unsafe.Pointer(&pg[0]))
		if p >= start && p < start+uintptr(len(pg)) {
			return true
		}
	}
	return false
}
