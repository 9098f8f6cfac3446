// SPDX-License-Identifier: Apache-2.0

package agentinstall

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// writer stages files as temporary files next to their targets and renames
// them all at the end.
type writer struct {
	root    string
	chown   bool // make files root:root (false for an unprivileged --root)
	mode    fs.FileMode
	pending []*pendingFile
	files   []File
}

type pendingFile struct {
	pf   *renameio.PendingFile
	dir  string
	done bool
}

func (w *writer) perm() fs.FileMode {
	if w.mode == 0 {
		return 0o644
	}
	return w.mode
}

// stage writes data to a temporary file in path's directory (creating the
// directory 0755 if needed), chowned, fsynced, not yet renamed. A file that
// is already exactly so is left alone.
func (w *writer) stage(path string, data []byte) error {
	real := under(w.root, path)
	owner := "root:root"
	if !w.chown {
		owner = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	f := File{Path: path, Written: real, Mode: w.perm(), Owner: owner}
	if sameFile(real, data, w.perm(), 0, 0, w.chown) {
		w.files = append(w.files, f)
		return nil
	}
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if fi, err := os.Lstat(real); err == nil && fi.IsDir() {
		return fmt.Errorf("write %s: a directory is in the way", path)
	}
	pf, err := renameio.NewPendingFile(real, renameio.WithTempDir(dir), renameio.WithStaticPermissions(w.perm()))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	p := &pendingFile{pf: pf, dir: dir}
	w.pending = append(w.pending, p)
	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if w.chown {
		if err := pf.Chown(0, 0); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := pf.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f.Changed = true
	w.files = append(w.files, f)
	return nil
}

// commit renames every staged file over its target and fsyncs the
// directories.
func (w *writer) commit() error {
	dirs := map[string]bool{}
	for _, p := range w.pending {
		if err := p.pf.CloseAtomicallyReplace(); err != nil {
			return fmt.Errorf("replace %s: %w", p.pf.Name(), err)
		}
		p.done = true
		dirs[p.dir] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// cleanup removes temporary files that were not committed.
func (w *writer) cleanup() {
	for _, p := range w.pending {
		if !p.done {
			_ = p.pf.Cleanup()
		}
	}
}

// changed reports whether the file whose base name is name was written.
func (w *writer) changed(name string) bool {
	for _, f := range w.files {
		if filepath.Base(f.Path) == name {
			return f.Changed
		}
	}
	return false
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// tightenDir makes dir a root:root 0755 directory (creating it if needed),
// working on a descriptor opened without following links; a symbolic link
// or a non-directory at dir is refused. It reports whether anything changed.
func tightenDir(root, dir string, chown bool) (bool, error) {
	real := under(root, dir)
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	changed := false
	if err := unix.Mkdir(real, 0o755); err == nil {
		changed = true
	} else if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	fd, err := unix.Open(real, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return false, fmt.Errorf("tighten %s: not a directory (a symbolic link?); refusing", dir)
		}
		return false, fmt.Errorf("tighten %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("tighten %s: %w", dir, err)
	}
	if chown && (st.Uid != 0 || st.Gid != 0) {
		if err := unix.Fchown(fd, 0, 0); err != nil {
			return false, fmt.Errorf("tighten %s: chown root:root: %w", dir, err)
		}
		changed = true
	}
	if st.Mode&0o7777 != 0o755 || changed {
		if err := unix.Fchmod(fd, 0o755); err != nil {
			return false, fmt.Errorf("tighten %s: chmod 0755: %w", dir, err)
		}
		changed = changed || st.Mode&0o7777 != 0o755
	}
	if err := unix.Fsync(fd); err != nil {
		return false, fmt.Errorf("tighten %s: %w", dir, err)
	}
	return changed, syncDir(filepath.Dir(real))
}
