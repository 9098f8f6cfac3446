// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/opaquevault/opaquevault/internal/localapi"
)

// CredentialPolicyDir holds the credential provider's policies: one file
// UNIT.conf per unit that may receive secrets with LoadCredential=.
const CredentialPolicyDir = "/etc/ov/credentials.d"

// maxPolicySize bounds a policy file.
const maxPolicySize = 64 << 10

// CredentialPolicy says which secrets one unit may receive. The file
// /etc/ov/credentials.d/UNIT.conf holds, one per line, app=APP, env=ENV and
// secrets=NAME,NAME,...; blank lines and lines starting with # are ignored,
// any other line, a key given twice or a missing key is an error. It must be
// a regular file owned by root and writable by nobody else, in a directory
// tree with the same property, reached without a symbolic link.
type CredentialPolicy struct {
	App, Env string
	Secrets  []string
}

// Allows reports whether the policy lets its unit receive the secret name.
func (p *CredentialPolicy) Allows(name string) bool { return slices.Contains(p.Secrets, name) }

// ParseCredentialPolicy parses the text of a policy file (see
// [CredentialPolicy]); the app and env are normalized as names are.
func ParseCredentialPolicy(b []byte) (*CredentialPolicy, error) {
	p := &CredentialPolicy{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		if seen[k] {
			return nil, fmt.Errorf("line %d: %s given twice", n, k)
		}
		seen[k] = true
		switch k {
		case "app":
			p.App = v
		case "env":
			p.Env = v
		case "secrets":
			for _, s := range strings.Split(v, ",") {
				s = strings.TrimSpace(s)
				if s == "" || len(s) > localapi.MaxNameLen || !validCredentialID(s) {
					return nil, fmt.Errorf("line %d: invalid secret name %q", n, s)
				}
				if !slices.Contains(p.Secrets, s) {
					p.Secrets = append(p.Secrets, s)
				}
			}
		default:
			return nil, fmt.Errorf("line %d: unknown key %q (want app, env, secrets)", n, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"app", "env", "secrets"} {
		if !seen[k] {
			return nil, fmt.Errorf("no %s= line", k)
		}
	}
	a, e, err := normalizeScope(p.App, p.Env)
	if err != nil {
		return nil, err
	}
	p.App, p.Env = a, e
	return p, nil
}

// validCredentialID is what systemd accepts as a credential id (a file
// name: no "/", not "." or "..", printable).
func validCredentialID(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validUnitName accepts unit names as systemd puts them in the peer
// address: a file name with a unit type suffix.
func validUnitName(s string) bool {
	if !validCredentialID(s) {
		return false
	}
	dot := strings.LastIndexByte(s, '.')
	return dot > 0 && dot < len(s)-1
}

// errPolicy marks a policy that is missing, unsafe or malformed.
var errPolicy = errors.New("credential policy")

// readCredentialPolicy opens dir/UNIT.conf without following symbolic
// links and checks, on the open descriptors, that the file and every
// directory up to / are owned by root and not writable by group or others.
func readCredentialPolicy(dir, unit string) (*CredentialPolicy, error) {
	path := filepath.Join(dir, unit+".conf")
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", errPolicy, path, fmt.Sprintf(format, args...))
	}
	if !filepath.IsAbs(dir) {
		return nil, fail("not an absolute path")
	}
	// Walk from / one component at a time, refusing symbolic links.
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fail("open /: %v", err)
	}
	defer func() { unix.Close(fd) }()
	if err := rootOnly(fd, true); err != nil {
		return nil, fail("/: %v", err)
	}
	for _, c := range strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/") {
		if c == "" {
			continue
		}
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return nil, fail("%s is not a directory (symbolic links are refused)", c)
			}
			return nil, fail("open directory %s: %v", c, err)
		}
		unix.Close(fd)
		fd = nfd
		if err := rootOnly(fd, true); err != nil {
			return nil, fail("directory %s: %v", c, err)
		}
	}
	ffd, err := unix.Openat(fd, unit+".conf", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fail("no such file: the unit has no policy")
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, fail("a symbolic link (refused)")
		}
		return nil, fail("open: %v", err)
	}
	defer unix.Close(ffd)
	if err := rootOnly(ffd, false); err != nil {
		return nil, fail("%v", err)
	}
	b := make([]byte, maxPolicySize+1)
	n := 0
	for n < len(b) {
		m, err := unix.Read(ffd, b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fail("read: %v", err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n > maxPolicySize {
		return nil, fail("larger than %d bytes", maxPolicySize)
	}
	p, err := ParseCredentialPolicy(b[:n])
	if err != nil {
		return nil, fail("%v", err)
	}
	return p, nil
}

// rootOnly checks the open fd: owned by root, not writable by group or
// others, a directory (dir) or a regular file with one link.
func rootOnly(fd int, dir bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	t := uint32(st.Mode) & unix.S_IFMT
	switch {
	case dir && t != unix.S_IFDIR:
		return errors.New("not a directory")
	case !dir && t != unix.S_IFREG:
		return errors.New("not a regular file")
	case !dir && st.Nlink != 1:
		return fmt.Errorf("has %d hard links", st.Nlink)
	case st.Uid != 0:
		return fmt.Errorf("owned by uid %d, want root", st.Uid)
	case uint32(st.Mode)&0o022 != 0:
		return fmt.Errorf("writable by group or others (mode %04o)", uint32(st.Mode)&0o7777)
	}
	return nil
}
