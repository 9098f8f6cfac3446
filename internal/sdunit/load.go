// SPDX-License-Identifier: Apache-2.0

package sdunit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SystemDirs is the system unit search path, highest priority first (systemd.unit(5)).
var SystemDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
}

// Unit is a unit file and its drop-ins, read from a root directory ("/" for the running system).
type Unit struct {
	Name    string
	Root    string
	Path    string   // the unit file, as a path inside Root
	DropIns []string // the drop-ins in the order systemd applies them, as paths inside Root
	Entries []Entry  // the unit file's, then each drop-in's, in that order
}

// ErrNotFound: no unit file of that name on the search path.
var ErrNotFound = errors.New("unit file not found")

// ValidName checks a unit name as given on the command line: a service, with no path.
func ValidName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || len(name) > 255 {
		return fmt.Errorf("invalid unit name %q", name)
	}
	if !strings.HasSuffix(name, ".service") {
		return fmt.Errorf("invalid unit name %q: want a .service unit", name)
	}
	return nil
}

// Load reads the unit name under root with its drop-ins (NAME.d/*.conf in every directory of the
// search path, and TEMPLATE@.service.d for an instance). A drop-in of the same file name in a
// higher-priority directory hides the lower one; drop-ins apply in file-name order. Drop-ins named
// in skip (file names, such as "50-opaquevault.conf") are left out.
func Load(root, name string, skip ...string) (*Unit, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if root == "" {
		root = "/"
	}
	u := &Unit{Name: name, Root: root}
	names := []string{name}
	if tmpl, ok := templateOf(name); ok {
		names = append(names, tmpl)
	}
	for _, n := range names {
		for _, d := range SystemDirs {
			p := filepath.Join(d, n)
			if _, err := statIn(root, p); err == nil {
				u.Path = p
				break
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("load %s: %w", name, err)
			}
		}
		if u.Path != "" {
			break
		}
	}
	if u.Path == "" {
		return nil, fmt.Errorf("load %s: %w in %s", name, ErrNotFound, strings.Join(underAll(root, SystemDirs), ", "))
	}
	if target, err := readlinkIn(root, u.Path); err == nil && target == "/dev/null" {
		return nil, fmt.Errorf("load %s: the unit is masked (%s links to /dev/null)", name, u.Path)
	}
	es, err := readEntries(root, u.Path)
	if err != nil {
		return nil, err
	}
	u.Entries = es
	chosen := map[string]string{}
	for i := len(names) - 1; i >= 0; i-- { // the instance's drop-ins win over the template's
		pass := map[string]bool{}
		for _, d := range SystemDirs {
			dir := filepath.Join(d, names[i]+".d")
			ents, err := os.ReadDir(under(root, dir))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), ".conf") || contains(skip, e.Name()) {
					continue
				}
				if pass[e.Name()] {
					continue // a higher-priority directory has one of that name
				}
				pass[e.Name()] = true
				chosen[e.Name()] = filepath.Join(dir, e.Name())
			}
		}
	}
	keys := make([]string, 0, len(chosen))
	for k := range chosen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := chosen[k]
		if target, err := readlinkIn(root, p); err == nil && target == "/dev/null" {
			continue
		}
		es, err := readEntries(root, p)
		if err != nil {
			return nil, err
		}
		u.DropIns = append(u.DropIns, p)
		u.Entries = append(u.Entries, es...)
	}
	return u, nil
}

// templateOf returns foo@.service for foo@bar.service.
func templateOf(name string) (string, bool) {
	at := strings.IndexByte(name, '@')
	dot := strings.LastIndexByte(name, '.')
	if at < 0 || dot < at || at+1 == dot {
		return "", false
	}
	return name[:at+1] + name[dot:], true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// under maps a path of the image to a path on this machine.
func under(root, p string) string {
	if root == "/" || root == "" {
		return p
	}
	return filepath.Join(root, p)
}

func underAll(root string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = under(root, p)
	}
	return out
}

// resolveIn follows symbolic links of p inside root (an absolute link target is taken inside the
// image, as systemd --root does), up to 16 levels.
func resolveIn(root, p string) (string, error) {
	for i := 0; i < 16; i++ {
		fi, err := os.Lstat(under(root, p))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(under(root, p))
		if err != nil {
			return "", err
		}
		if t == "/dev/null" {
			return t, nil
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", fmt.Errorf("resolve %s: too many levels of symbolic links", p)
}

func statIn(root, p string) (fs.FileInfo, error) {
	r, err := resolveIn(root, p)
	if err != nil {
		return nil, err
	}
	if r == "/dev/null" {
		return os.Stat("/dev/null")
	}
	return os.Stat(under(root, r))
}

func readlinkIn(root, p string) (string, error) {
	r, err := resolveIn(root, p)
	if err != nil {
		return "", err
	}
	return r, nil
}

func readEntries(root, p string) ([]Entry, error) {
	r, err := resolveIn(root, p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	f, err := os.Open(under(root, r))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return Parse(p, b)
}

// EnvFile is one EnvironmentFile= path; Optional is the "-" form, which may be missing.
type EnvFile struct {
	Path     string
	Optional bool
	Entry    Entry
}

// Service is what the [Service] section of a unit says after every drop-in: lists reset by an
// empty assignment, single values the last assignment.
type Service struct {
	ExecStart        []*Exec
	EnvironmentFiles []EnvFile
	Environment      []Assignment // every assignment in order (a later one of a name wins)
	User             string
	DynamicUser      bool
	Type             string
	// OtherExec lists the other Exec*= settings present (ExecStartPre=, ExecStop=, ...): they lose
	// the variables of EnvironmentFile= too when it is emptied.
	OtherExec []string
}

// Service computes the effective [Service] settings.
func (u *Unit) Service() (*Service, error) { return ServiceOf(u.Entries) }

// ServiceOf computes the effective [Service] settings of entries.
func ServiceOf(entries []Entry) (*Service, error) {
	s := &Service{}
	other := map[string]bool{}
	for _, e := range entries {
		if e.Section != "Service" {
			continue
		}
		switch e.Key {
		case "ExecStart":
			if e.Value == "" {
				s.ExecStart = nil
				continue
			}
			x, err := ParseExec(e)
			if err != nil {
				return nil, err
			}
			s.ExecStart = append(s.ExecStart, x)
		case "EnvironmentFile":
			if e.Value == "" {
				s.EnvironmentFiles = nil
				continue
			}
			p, opt := e.Value, false
			if strings.HasPrefix(p, "-") {
				p, opt = strings.TrimSpace(p[1:]), true
			}
			s.EnvironmentFiles = append(s.EnvironmentFiles, EnvFile{Path: p, Optional: opt, Entry: e})
		case "Environment":
			if e.Value == "" {
				s.Environment = nil
				continue
			}
			as, err := ParseEnvironment(e)
			if err != nil {
				return nil, err
			}
			s.Environment = append(s.Environment, as...)
		case "User":
			s.User = e.Value
		case "DynamicUser":
			s.DynamicUser = parseBool(e.Value)
		case "Type":
			s.Type = e.Value
		case "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop", "ExecStopPost":
			if e.Value == "" {
				delete(other, e.Key)
			} else {
				other[e.Key] = true
			}
		}
	}
	for k := range other {
		s.OtherExec = append(s.OtherExec, k+"=")
	}
	sort.Strings(s.OtherExec)
	return s, nil
}

func parseBool(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on", "y", "t":
		return true
	}
	return false
}
