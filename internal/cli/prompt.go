// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/opaquevault/opaquevault/credentials"
)

// maxPasswordFile bounds a --password-file.
const maxPasswordFile = 4096

// readSecretInput reads a password-like secret: from file (which must be 0600 and owned by the
// caller) when file is set, else from /dev/tty with echo off. flag is the flag that gives the file
// instead ("--password-file"; "" when there is none), named in the hint when there is no terminal.
// With confirm, the terminal asks twice. The caller must clear the returned slice.
func (a *App) readSecretInput(prompt, flag, file string, confirm bool) ([]byte, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, withCode(ExitLocked, errors.New("locked: no terminal to ask for the "+prompt+" on"), a.noTerminalHint(flag))
	}
	defer tty.Close()
	ask := func(p string) ([]byte, error) { return askNoEcho(tty, p, prompt) }
	first, err := ask(upperFirst(prompt))
	if err != nil {
		return nil, err
	}
	if !confirm {
		return first, nil
	}
	second, err := ask("Repeat " + prompt)
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if subtle.ConstantTimeCompare(first, second) != 1 {
		clear(first)
		return nil, errors.New("read " + prompt + ": the two entries differ")
	}
	return first, nil
}

// askNoEcho prints p on tty and reads one line with echo off. Ctrl-D (end of input) and an empty
// line give up with ExitLocked, as no terminal would: term.ReadPassword keeps waiting after Ctrl-D,
// because a terminal read of 0 bytes is not an error to it.
func askNoEcho(tty *os.File, p, what string) ([]byte, error) {
	fd := int(tty.Fd())
	fmt.Fprintf(tty, "%s: ", p)
	saveTerminal(fd)
	defer forgetTerminal()
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read %s from terminal: %w", what, err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("read %s from terminal: %w", what, err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	var line []byte
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			clear(line)
			return nil, fmt.Errorf("read %s from terminal: %w", what, err)
		}
		if n == 0 { // Ctrl-D
			fmt.Fprint(tty, "\r\n")
			clear(line)
			return nil, withCode(ExitLocked, errors.New("locked: no "+what+" given (end of input)"))
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	fmt.Fprint(tty, "\r\n")
	if len(line) == 0 {
		return nil, withCode(ExitLocked, errors.New("locked: no "+what+" given (empty input)"))
	}
	return line, nil
}

// readPasswordFile reads a password from a 0600 file of the caller, dropping one trailing newline.
func readPasswordFile(path string) ([]byte, error) {
	buf, err := credentials.ReadSecretFile(path, credentials.ReadOptions{MaxSize: maxPasswordFile})
	if errors.Is(err, credentials.ErrWrongSize) {
		if fi, serr := os.Lstat(path); serr == nil && fi.Size() == 0 {
			return nil, emptyPasswordFile(path) // refused all the same: only the message and the code differ
		}
	}
	if err != nil {
		err = fmt.Errorf("read password file: %w", err)
		if errors.Is(err, fs.ErrNotExist) {
			// Like a missing .env file: not found (5).
			err = withCode(ExitNotFound, err)
		}
		return nil, withHints(err, "create it with `install -m 600 /dev/null FILE` and write the password into it")
	}
	defer buf.Destroy()
	b := bytes.Clone(buf.Bytes())
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, emptyPasswordFile(path)
	}
	return b, nil
}

// emptyPasswordFile is an empty password file (or one holding only a newline): no password given,
// locked (3), as an empty line at the prompt.
func emptyPasswordFile(path string) error {
	return withCode(ExitLocked, fmt.Errorf("read password file %s: it is empty: no password given", path),
		"write the password into it (one line), or leave out the flag to be asked on the terminal")
}

// noTerminalHint says what to do instead of typing at a prompt: pass flag's file, or, where the
// command would use a running agent (`ov run`), unlock one. Commands that never ask the agent do not
// mention it: an unlocked agent would not help them.
func (a *App) noTerminalHint(flag string) string {
	if flag == "" {
		return "pipe it on stdin instead"
	}
	h := "pass " + flag + " FILE (a 0600 file holding it)"
	if flag == "--password-file" && a.cmd != nil && usesAgent(a.cmd.path) {
		h += ", or unlock an agent with `ov agent start` (or `ov agent unlock`)"
	}
	return h + "; ov never takes a password on the command line or from the environment"
}

// usesAgent reports whether the command at path reads secrets through a running agent before it
// asks for the password (cmd_run.go's readForRun). `ov mcp serve` also uses the agent, but never
// prompts.
func usesAgent(path string) bool { return path == "run" }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(bytes.ToUpper([]byte(s[:1]))) + s[1:]
}

// The terminal state while a prompt has echo off, so that an interrupt can give it back.
var prompting struct {
	sync.Mutex
	fd    int
	state *term.State
}

func saveTerminal(fd int) {
	st, err := term.GetState(fd)
	if err != nil {
		return
	}
	prompting.Lock()
	prompting.fd, prompting.state = fd, st
	prompting.Unlock()
}

func forgetTerminal() {
	prompting.Lock()
	prompting.state = nil
	prompting.Unlock()
}

// restoreTerminal turns echo back on if a prompt was interrupted.
func restoreTerminal() {
	prompting.Lock()
	defer prompting.Unlock()
	if prompting.state != nil {
		_ = term.Restore(prompting.fd, prompting.state)
		prompting.state = nil
	}
}
