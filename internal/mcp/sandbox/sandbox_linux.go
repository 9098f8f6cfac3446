// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// HelperArg is the first argument that makes a binary the sandbox helper.
const HelperArg = "__ov-sandbox-exec"

// ErrUnavailable is matched when this machine cannot isolate commands (user
// namespaces disabled, or no private /proc can be mounted).
var ErrUnavailable = errors.New("commands cannot be isolated from ov's secrets on this machine")

// Paths returns the paths a command must not see, for a user whose
// environment getenv reads: the agent's sockets and rendezvous file, ov's
// config, state and cache directories, /etc/ov (key files), the
// credentials of systemd services, and the user's runtime directory. extra
// (for example a --config file) is added. Relative and empty paths are
// dropped.
func Paths(getenv func(string) string, extra ...string) []string {
	home := getenv("HOME")
	xdg := func(env, def string) string {
		if d := getenv(env); filepath.IsAbs(d) {
			return filepath.Join(d, "ov")
		}
		if filepath.IsAbs(home) {
			return filepath.Join(home, def, "ov")
		}
		return ""
	}
	ps := []string{
		"/etc/ov", filepath.Dir(localapi.DefaultSystemSocket), "/run/credentials",
		xdg("XDG_CONFIG_HOME", ".config"), xdg("XDG_STATE_HOME", ".local/state"), xdg("XDG_CACHE_HOME", ".cache"),
		getenv("CREDENTIALS_DIRECTORY"),
		"/tmp/tmux-" + strconv.Itoa(os.Getuid()), "/run/screen",
	}
	if rt := localapi.UserRuntimeDir(); rt != "" {
		ps = append(ps, rt)
	}
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" {
		ps = append(ps, rt)
	}
	// The system agent's socket may live anywhere the rendezvous file says.
	if b, err := os.ReadFile(localapi.DefaultRendezvous); err == nil {
		if ep, err := localapi.ParseRendezvous(b); err == nil {
			ps = append(ps, filepath.Dir(ep.Socket))
		}
	}
	ps = append(ps, extra...)
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Command returns a command that runs path with argv (argv[0] as given) in
// the sandbox, hiding hide; ctx is as for [exec.CommandContext]. self is
// the binary that serves as the helper ("" for /proc/self/exe). The caller
// sets Env, Dir, stdio and starts it; SysProcAttr is set here (Setpgid
// included). The helper is PID 1 of the new namespace and the command its
// child; pass a pipe as the first of ExtraFiles to learn how the command
// ended ([ReadStatus]).
func Command(ctx context.Context, self string, hide []string, path string, argv []string) *exec.Cmd {
	if self == "" {
		self = "/proc/self/exe"
	}
	args := []string{HelperArg, strconv.Itoa(len(hide))}
	args = append(args, hide...)
	args = append(args, path)
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Args[0] = "ov-sandbox"
	uid, gid := os.Getuid(), os.Getgid()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:                    true,
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if uid != 0 {
		// The helper keeps CAP_SYS_ADMIN (to mount) and CAP_SETPCAP (to drop the bounding set) in the new
		// user namespace across its execve;
		// it drops every capability before it runs the command.
		cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP}
	}
	return cmd
}

// HelperMain is the helper: args are what follows [HelperArg]. It covers
// the paths, mounts a private /proc, drops every capability, and runs the
// command as its only child, staying as the namespace's init: it forwards
// SIGTERM, SIGINT, SIGHUP and SIGQUIT, and exits when the command does
// (which kills whatever the command left behind). It writes how the
// command ended to file descriptor 3 when there is one ([ReadStatus]).
// Its exit status is the command's (128+N for signal N), or 125 when the
// sandbox could not be set up, with the reason on stderr (never a value).
func HelperMain(args []string) int {
	runtime.LockOSThread() // capabilities are per thread: drop them on the one that starts the command
	status := os.NewFile(3, "status")
	if status != nil {
		syscall.CloseOnExec(3)
		if _, err := status.Stat(); err != nil {
			status = nil
		}
	}
	report := func(format string, a ...any) {
		if status != nil {
			fmt.Fprintf(status, format, a...)
		}
	}
	path, argv, err := setup(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ov: error: sandbox: %v\n", err)
		return 125
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		report("start %s", err)
		if errors.Is(err, syscall.ENOENT) {
			return 127
		}
		return 126
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	_ = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		report("signal %d", int(ws.Signal()))
		return 128 + int(ws.Signal())
	}
	report("exit %d", ws.ExitStatus())
	return ws.ExitStatus()
}

// ReadStatus parses what [HelperMain] wrote to its status descriptor: the
// command's exit code, or the signal that killed it (exit code -1), or the
// reason it did not start (startErr).
func ReadStatus(b []byte) (exitCode int, sig syscall.Signal, startErr string, ok bool) {
	kind, v, found := strings.Cut(string(b), " ")
	if !found {
		return 0, 0, "", false
	}
	switch kind {
	case "exit", "signal":
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, "", false
		}
		if kind == "signal" {
			return -1, syscall.Signal(n), "", true
		}
		return n, 0, "", true
	case "start":
		return 0, 0, v, true
	}
	return 0, 0, "", false
}

func setup(args []string) (string, []string, error) {
	if len(args) < 1 {
		return "", nil, errors.New("no arguments")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 || len(args) < 1+n+2 {
		return "", nil, errors.New("bad arguments")
	}
	hide, path, argv := args[1:1+n], args[1+n], args[2+n:]
	if os.Getpid() != 1 {
		return "", nil, errors.New("not started in a new PID namespace")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", nil, fmt.Errorf("make mounts private: %w", err)
	}
	for _, p := range hide {
		if err := cover(p); err != nil {
			return "", nil, err
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", nil, fmt.Errorf("mount a private /proc: %w", err)
	}
	if err := dropPrivileges(); err != nil {
		return "", nil, err
	}
	return path, argv, nil
}

// cover hides p: an empty file system over a directory (writable by the user for the runtime
// directory, which programs expect to use, read-only otherwise), /dev/null over anything else.
func cover(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// Cannot even look at it (a root-only directory): cover it anyway if lstat sees it.
		if _, lerr := os.Lstat(p); lerr != nil {
			return nil
		}
		return mountEmpty(p, true)
	}
	if fi.IsDir() {
		writable := p == os.Getenv("XDG_RUNTIME_DIR") || p == localapi.UserRuntimeDir()
		return mountEmpty(p, !writable)
	}
	if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("cover %s: %w", p, err)
	}
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("cover %s: %w", p, err)
	}
	return nil
}

func mountEmpty(p string, readOnly bool) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	opts := "size=1m,mode=0700,uid=" + strconv.Itoa(os.Getuid()) + ",gid=" + strconv.Itoa(os.Getgid())
	if readOnly {
		flags |= unix.MS_RDONLY
		opts = "size=4k,mode=0555"
	}
	if err := unix.Mount("tmpfs", p, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("cover %s: %w", p, err)
	}
	return nil
}

// dropPrivileges leaves the calling thread (the one that calls execve) without any capability it
// could pass on: securebits that give uid 0 none, an empty bounding set, no ambient or inheritable
// capabilities, and no_new_privs.
func dropPrivileges() error {
	const bits = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 // NOROOT, NO_SETUID_FIXUP, KEEP_CAPS (off), NO_CAP_AMBIENT_RAISE, each locked
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, bits&^(1<<4), 0, 0, 0); err != nil {
		return fmt.Errorf("set securebits: %w", err)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}
