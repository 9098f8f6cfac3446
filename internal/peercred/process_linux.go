// SPDX-License-Identifier: Apache-2.0

//go:build linux

package peercred

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func processOfFD(fd int) (Process, error) {
	pidfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
			return Process{}, fmt.Errorf("SO_PEERPIDFD: %w: %w", errors.ErrUnsupported, err)
		}
		return Process{}, fmt.Errorf("SO_PEERPIDFD: %w", err)
	}
	defer unix.Close(pidfd)
	pid, err := pidOfPIDFD(pidfd)
	if err != nil {
		return Process{}, err
	}
	p := Process{PID: int32(pid)}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		p.Exe = exe
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
		p.Comm = strings.TrimSuffix(string(b), "\n")
	}
	// Still running: a pidfd polls readable once its process exits, so the
	// pid read above was not reused while /proc was read. (poll needs no
	// permission over the process, unlike pidfd_send_signal.)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 0); err == nil && n == 0 {
		p.Verified = true
	} else {
		p.Exe, p.Comm = "", ""
	}
	return p, nil
}

// pidOfPIDFD asks the kernel which pid a pidfd refers to: PIDFD_GET_INFO
// (Linux 6.13), else the Pid: line of /proc/self/fdinfo.
func pidOfPIDFD(pidfd int) (int, error) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_PID}
	if err := unix.IoctlPidfdInfo(pidfd, &info); err == nil && info.Mask&unix.PIDFD_INFO_PID != 0 {
		return int(info.Pid), nil
	} else if errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("PIDFD_GET_INFO: %w", err)
	}
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, fmt.Errorf("read pidfd info: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				// -1: the process has exited; 0: not in our pid namespace.
				return 0, fmt.Errorf("read pidfd info: pid %q: %w", strings.TrimSpace(v), unix.ESRCH)
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("read pidfd info: no Pid: line")
}

func probePeerPIDFD() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("probe SO_PEERPIDFD: %w", err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pidfd, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("SO_PEERPIDFD: %w: %w", errors.ErrUnsupported, err)
		}
		return fmt.Errorf("SO_PEERPIDFD: %w", err)
	}
	unix.Close(pidfd)
	return nil
}
