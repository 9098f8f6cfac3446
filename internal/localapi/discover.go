// SPDX-License-Identifier: Apache-2.0

//go:build linux || darwin

package localapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// DefaultRendezvous is the root-owned file that names the system agent's
	// socket.
	DefaultRendezvous = "/etc/ov/agent.socket"
	// DefaultSystemSocket is where ov-agent.socket listens.
	DefaultSystemSocket = "/run/ov/agent.sock"
	// maxRendezvous bounds the rendezvous file.
	maxRendezvous = 4096
)

// Endpoint is where the agent listens and what its listener must look like.
type Endpoint struct {
	// Socket is the path of the unix socket.
	Socket string
	// ListenerUIDs are the uids allowed to have created the listening
	// socket (checked with SO_PEERCRED after connect).
	ListenerUIDs []uint32
	// System: found through the root-owned rendezvous file; the socket's
	// directory must be owned by root. False for the user's own agent.
	System bool
	// Rendezvous is the file the endpoint came from (System only).
	Rendezvous string

	explicit bool // from DiscoverOptions.Socket
}

// Guarantee describes, for `ov agent status`, what the checks on this
// endpoint do and do not protect against.
func (e *Endpoint) Guarantee() string {
	if e.System {
		return "system agent found through the root-owned " + e.Rendezvous + "; its socket directory and listener (uid " +
			joinUIDs(e.ListenerUIDs) + ") are checked, so other processes of your user cannot impersonate it"
	}
	return "user agent at " + e.Socket + " (no root-owned rendezvous): any process running as your user could replace this socket"
}

// DiscoverOptions overrides the defaults of [Discover], for tests and for an
// explicit --socket.
type DiscoverOptions struct {
	// Rendezvous replaces DefaultRendezvous.
	Rendezvous string
	// RuntimeDir replaces $XDG_RUNTIME_DIR (on macOS, $TMPDIR when that is
	// unset) for the user agent.
	RuntimeDir string
	// Socket, when set, skips discovery: the socket is used with the checks
	// of a user agent (its directory owned by the caller or root and not
	// writable by group or others; the listener the caller or root).
	Socket string
}

// Discover finds the agent: the system agent through the rendezvous file
// when it exists, else the user's agent under $XDG_RUNTIME_DIR. It does not
// connect; [Client] does, and checks the listener.
//
// A rendezvous file that exists but fails a check is an error matching
// [ErrUntrusted] (never a silent fall-back). When there is neither a
// rendezvous file nor a runtime directory, the error matches
// [ErrUnreachable].
func Discover() (*Endpoint, error) { return DiscoverWith(DiscoverOptions{}) }

// DiscoverWith is [Discover] with options.
func DiscoverWith(o DiscoverOptions) (*Endpoint, error) {
	uid := uint32(os.Getuid())
	if o.Socket != "" {
		p, err := filepath.Abs(o.Socket)
		if err != nil {
			return nil, fmt.Errorf("find agent socket: %w", err)
		}
		owners := []uint32{0}
		if uid != 0 {
			owners = append(owners, uid)
		}
		return &Endpoint{Socket: p, ListenerUIDs: owners, explicit: true}, nil
	}
	rv := o.Rendezvous
	if rv == "" {
		rv = DefaultRendezvous
	}
	ep, err := ReadRendezvous(rv)
	if err == nil {
		return ep, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rt := o.RuntimeDir
	if rt == "" {
		rt = UserRuntimeDir()
	}
	if rt == "" {
		return nil, fmt.Errorf("find agent: no %s and $XDG_RUNTIME_DIR is not set: %w", rv, ErrUnreachable)
	}
	return &Endpoint{Socket: filepath.Join(rt, "ov", "agent.sock"), ListenerUIDs: []uint32{uid}}, nil
}

// UserRuntimeDir returns $XDG_RUNTIME_DIR, or on macOS $TMPDIR (a per-user
// 0700 directory there), or "".
func UserRuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d
	}
	if runtime.GOOS == "darwin" {
		if d := os.Getenv("TMPDIR"); d != "" {
			return filepath.Clean(d)
		}
	}
	return ""
}

// UserSocketPath is where a user agent listens:
// [UserRuntimeDir]/ov/agent.sock, or "" without a runtime directory.
func UserSocketPath() string {
	rt := UserRuntimeDir()
	if rt == "" {
		return ""
	}
	return filepath.Join(rt, "ov", "agent.sock")
}

// ReadRendezvous reads and checks a rendezvous file: it and every directory
// above it must be owned by root and not writable by group or others, no
// component may be a symbolic link, the file must be regular with one link;
// its contents must be version=1, an absolute socket= path and a non-empty
// listener_uids= list (see [ParseRendezvous]). A missing file is returned
// as fs.ErrNotExist; every other failure matches [ErrUntrusted].
func ReadRendezvous(path string) (*Endpoint, error) {
	b, err := readRootFile(path, maxRendezvous)
	if err != nil {
		return nil, err
	}
	ep, err := ParseRendezvous(b)
	if err != nil {
		return nil, fmt.Errorf("read rendezvous %s: %w: %w", path, ErrUntrusted, err)
	}
	ep.Rendezvous = path
	return ep, nil
}

// ParseRendezvous parses the contents of a rendezvous file: key=value fields
// separated by blanks, on one line as [FormatRendezvous] writes them (or one
// per line, as files written by earlier versions have them); a line whose
// first non-blank character is # is a comment.
func ParseRendezvous(b []byte) (*Endpoint, error) {
	seen := map[string]bool{}
	ep := &Endpoint{System: true}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if err := ep.setRendezvousField(field, seen); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
		}
	}
	for _, k := range []string{"version", "socket", "listener_uids"} {
		if !seen[k] {
			return nil, fmt.Errorf("missing %s=", k)
		}
	}
	return ep, nil
}

// setRendezvousField applies one key=value field of a rendezvous file.
func (ep *Endpoint) setRendezvousField(field string, seen map[string]bool) error {
	k, v, ok := strings.Cut(field, "=")
	if !ok {
		return fmt.Errorf("want key=value, not %q", field)
	}
	if seen[k] {
		return fmt.Errorf("%s given twice", k)
	}
	seen[k] = true
	switch k {
	case "version":
		if v != "1" {
			return fmt.Errorf("unsupported version %q", v)
		}
	case "socket":
		if !filepath.IsAbs(v) || filepath.Clean(v) != v || strings.ContainsAny(v, "\x00") {
			return fmt.Errorf("socket must be a clean absolute path")
		}
		ep.Socket = v
	case "listener_uids":
		for _, f := range strings.Split(v, ",") {
			u, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return fmt.Errorf("listener_uids: %q is not a uid", f)
			}
			if !slices.Contains(ep.ListenerUIDs, uint32(u)) {
				ep.ListenerUIDs = append(ep.ListenerUIDs, uint32(u))
			}
		}
	default:
		return fmt.Errorf("unknown key %q", k)
	}
	return nil
}

// FormatRendezvous is the contents of a rendezvous file for ep: one line of
// blank-separated key=value fields, e.g.
// "version=1 socket=/run/ov/agent.sock listener_uids=0".
func FormatRendezvous(ep *Endpoint) []byte {
	return []byte("version=1 socket=" + ep.Socket + " listener_uids=" + joinUIDs(ep.ListenerUIDs) + "\n")
}

func joinUIDs(u []uint32) string {
	s := make([]string, len(u))
	for i, v := range u {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(s, ",")
}

// dirRule says who may own the directories on a path.
type dirRule struct {
	// owners of ancestors (root always).
	ancestors []uint32
	// owners of the last directory, and whether it must be private (0700).
	last    []uint32
	private bool
}

// walkDirs opens every directory of the absolute, clean path dir from "/"
// down without following symbolic links, checks each on its descriptor, and
// returns the last one's descriptor. Errors match [ErrUntrusted], or
// fs.ErrNotExist.
func walkDirs(dir string, r dirRule) (int, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return -1, fmt.Errorf("check directory %q: not a clean absolute path: %w", dir, ErrUntrusted)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /: %w", err)
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if dir == "/" {
		parts = nil
	}
	cur := "/"
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			nfd, err := unix.Openat(fd, parts[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			unix.Close(fd)
			cur = filepath.Join(cur, parts[i])
			if err != nil {
				if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
					return -1, fmt.Errorf("check directory %s: symbolic link or not a directory: %w", cur, ErrUntrusted)
				}
				if errors.Is(err, unix.ENOENT) {
					return -1, fmt.Errorf("open %s: %w", cur, fs.ErrNotExist)
				}
				return -1, fmt.Errorf("open %s: %w", cur, err)
			}
			fd = nfd
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("stat %s: %w", cur, err)
		}
		last := i == len(parts)-1
		perm := uint32(st.Mode) & 0o7777
		switch {
		case !last && st.Uid != 0 && !slices.Contains(r.ancestors, st.Uid):
			unix.Close(fd)
			return -1, fmt.Errorf("check directory %s: owned by uid %d: %w", cur, st.Uid, ErrUntrusted)
		case last && !slices.Contains(r.last, st.Uid):
			unix.Close(fd)
			return -1, fmt.Errorf("check directory %s: owned by uid %d, want %s: %w", cur, st.Uid, joinUIDs(r.last), ErrUntrusted)
		case perm&0o022 != 0:
			unix.Close(fd)
			return -1, fmt.Errorf("check directory %s: mode %04o is writable by group or others: %w", cur, perm, ErrUntrusted)
		case last && r.private && perm&0o077 != 0:
			unix.Close(fd)
			return -1, fmt.Errorf("check directory %s: mode %04o, want 0700: %w", cur, perm, ErrUntrusted)
		}
	}
	return fd, nil
}

// readRootFile reads a small root-owned file that is not writable by group
// or others, in root-owned directories (see [ReadRendezvous]).
func readRootFile(path string, max int) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("read %s: not an absolute path: %w", path, ErrUntrusted)
	}
	path = filepath.Clean(path)
	dfd, err := walkDirs(filepath.Dir(path), dirRule{last: []uint32{0}})
	if err != nil {
		return nil, fmt.Errorf("read rendezvous %s: %w", path, err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, filepath.Base(path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("read rendezvous %s: %w", path, fs.ErrNotExist)
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("read rendezvous %s: symbolic link refused: %w", path, ErrUntrusted)
		}
		return nil, fmt.Errorf("read rendezvous %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("read rendezvous %s: %w", path, err)
	}
	perm := uint32(st.Mode) & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("read rendezvous %s: not a regular file: %w", path, ErrUntrusted)
	case st.Uid != 0:
		return nil, fmt.Errorf("read rendezvous %s: owned by uid %d, want root: %w", path, st.Uid, ErrUntrusted)
	case perm&0o022 != 0:
		return nil, fmt.Errorf("read rendezvous %s: mode %04o is writable by group or others: %w", path, perm, ErrUntrusted)
	case st.Nlink != 1:
		return nil, fmt.Errorf("read rendezvous %s: %d hard links: %w", path, st.Nlink, ErrUntrusted)
	case st.Size > int64(max):
		return nil, fmt.Errorf("read rendezvous %s: %d bytes, at most %d: %w", path, st.Size, max, ErrUntrusted)
	}
	b := make([]byte, max+1)
	n, err := f.Read(b)
	if err != nil && n == 0 && st.Size > 0 {
		return nil, fmt.Errorf("read rendezvous %s: %w", path, err)
	}
	return b[:n], nil
}

// CheckSocketDir checks the directory of ep's socket: for a system
// endpoint, it and its ancestors owned by root and not writable by group or
// others; for a user endpoint, owned by the caller with mode 0700 (or, for an
// explicit socket, owned by the caller or root and not writable by others),
// under directories owned by root or the caller. Errors match
// [ErrUntrusted], or fs.ErrNotExist when the directory does not exist.
func CheckSocketDir(ep *Endpoint) error {
	dir := filepath.Dir(ep.Socket)
	uid := uint32(os.Getuid())
	var r dirRule
	if ep.System {
		r = dirRule{last: []uint32{0}}
	} else {
		// A user runtime directory may be reached through a symbolic link
		// (macOS: /var → /private/var); resolve it, then check the real
		// path without following anything.
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		r = dirRule{ancestors: []uint32{uid}, last: []uint32{uid}, private: true}
		if ep.explicit {
			r = dirRule{ancestors: []uint32{uid}, last: []uint32{0, uid}}
		}
	}
	fd, err := walkDirs(dir, r)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}
