// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/opaquevault/opaquevault/credentials"
)

// maxPasswordFile bounds a --password-file.
const maxPasswordFile = 4096

// readSecretInput reads a password-like secret: from file (which must be 0600 and owned by the
// caller) when file is set, else from /dev/tty with echo off. With confirm, the terminal asks twice.
// The caller must clear the returned slice.
func (a *App) readSecretInput(prompt, file string, confirm bool) ([]byte, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, withCode(ExitLocked, errors.New("locked: no terminal to ask for the "+prompt+" on"),
			"pass --password-file FILE (a 0600 file holding it), or unlock an agent with `ov agent start`; ov never takes a password on the command line or from the environment")
	}
	defer tty.Close()
	ask := func(p string) ([]byte, error) {
		fmt.Fprintf(tty, "%s: ", p)
		saveTerminal(int(tty.Fd()))
		b, err := term.ReadPassword(int(tty.Fd()))
		forgetTerminal()
		fmt.Fprint(tty, "\r\n")
		if err != nil {
			return nil, fmt.Errorf("read %s from terminal: %w", prompt, err)
		}
		return b, nil
	}
	first, err := ask(upperFirst(prompt))
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, errors.New("read " + prompt + ": empty input")
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

// readPasswordFile reads a password from a 0600 file of the caller, dropping one trailing newline.
func readPasswordFile(path string) ([]byte, error) {
	buf, err := credentials.ReadSecretFile(path, credentials.ReadOptions{MaxSize: maxPasswordFile})
	if err != nil {
		return nil, withHints(fmt.Errorf("read password file: %w", err), "create it with `install -m 600 /dev/null FILE` and write the password into it")
	}
	defer buf.Destroy()
	b := bytes.Clone(buf.Bytes())
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("read password file %s: it is empty", path)
	}
	return b, nil
}

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
