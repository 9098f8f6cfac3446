// SPDX-License-Identifier: Apache-2.0

//go:build linux

package credentials

import (
	"bytes"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// readOK reads path as a machine key and checks the bytes.
func readOK(t *testing.T, path string, want []byte, opts ReadOptions) {
	t.Helper()
	b, err := ReadKeyFile(path, opts)
	if err != nil {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	defer b.Destroy()
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("read %q, want %q", b.Bytes(), want)
	}
}

// keyFile writes a 32-byte key with perm, owned by the caller, in a fresh
// safe directory, and returns its path.
func keyFile(t *testing.T, perm os.FileMode) string {
	t.Helper()
	uid, gid := me()
	return makeFile(t, filepath.Join(testDir(t), "myapp.key"), testKey(32), perm, uid, gid)
}

func TestReadKeyFile0600(t *testing.T) {
	readOK(t, keyFile(t, 0o600), testKey(32), ReadOptions{})
}

func TestReadKeyFile0400(t *testing.T) {
	readOK(t, keyFile(t, 0o400), testKey(32), ReadOptions{})
}

// nobodyKey creates dir (owned by nobody, 0700) with a key file owned by
// nobody, for the unprivileged helper.
func nobodyKey(t *testing.T, perm os.FileMode, data []byte) string {
	t.Helper()
	needRoot(t)
	d := mkdir(t, filepath.Join(testDir(t), "svc"), 0o700, nobody, nobody)
	return makeFile(t, filepath.Join(d, "myapp.key"), data, perm, nobody, nobody)
}

func TestReadKeyFile0600Unprivileged(t *testing.T) {
	p := nobodyKey(t, 0o600, testKey(32))
	runAsNobody(t, map[string]string{"OV_OP": "readkey", "OV_PATH": p, "OV_WANT": "ok", "OV_DATA": hex.EncodeToString(testKey(32))})
}

func TestReadKeyFile0400Unprivileged(t *testing.T) {
	p := nobodyKey(t, 0o400, testKey(32))
	runAsNobody(t, map[string]string{"OV_OP": "readkey", "OV_PATH": p, "OV_WANT": "ok", "OV_DATA": hex.EncodeToString(testKey(32))})
}

func TestReadKeyFile0640(t *testing.T) {
	p := keyFile(t, 0o640)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrBadMode)
	if want := "read machine key " + p + ": mode 0640 is too open (must be 0600 or 0400)"; err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
}

func TestReadKeyFile0644(t *testing.T) {
	p := keyFile(t, 0o644)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrBadMode, p, "mode 0644 is too open", "must be 0600 or 0400")
}

func TestReadKeyFile0604(t *testing.T) {
	_, err := ReadKeyFile(keyFile(t, 0o604), ReadOptions{})
	wantErr(t, err, ErrBadMode, "mode 0604")
}

func TestReadKeyFile0700(t *testing.T) {
	_, err := ReadKeyFile(keyFile(t, 0o700), ReadOptions{})
	wantErr(t, err, ErrBadMode, "mode 0700 is not allowed (must be 0600 or 0400)")
}

func TestReadKeyFileSetuidBit(t *testing.T) {
	_, err := ReadKeyFile(keyFile(t, 0o600|os.ModeSetuid), ReadOptions{})
	wantErr(t, err, ErrBadMode, "mode 4600")
}

func TestReadKeyFileModesOption(t *testing.T) {
	_, err := ReadKeyFile(keyFile(t, 0o400), ReadOptions{Modes: []fs.FileMode{0o600}})
	wantErr(t, err, ErrBadMode, "mode 0400 is not allowed (must be 0600)")
}

func TestReadKeyFileSymlink(t *testing.T) {
	p := keyFile(t, 0o600)
	link := filepath.Join(filepath.Dir(p), "link.key")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	_, err := ReadKeyFile(link, ReadOptions{})
	wantErr(t, err, ErrSymlink, link, "symbolic link")
	wantErr(t, err, syscall.ELOOP)
}

func TestReadKeyFileSymlinkedParent(t *testing.T) {
	p := keyFile(t, 0o600)
	linkDir := filepath.Join(testDir(t), "etc-ov")
	if err := os.Symlink(filepath.Dir(p), linkDir); err != nil {
		t.Fatal(err)
	}
	_, err := ReadKeyFile(filepath.Join(linkDir, "myapp.key"), ReadOptions{})
	wantErr(t, err, ErrSymlink, linkDir)
	wantErr(t, err, syscall.ELOOP)
}

// The next three run the fallback for kernels without openat2.
func disableOpenat2(t *testing.T) {
	openat2Disabled = true
	t.Cleanup(func() { openat2Disabled = false })
}

func TestReadKeyFileNoOpenat2(t *testing.T) {
	p := keyFile(t, 0o600)
	disableOpenat2(t)
	readOK(t, p, testKey(32), ReadOptions{})
}

func TestReadKeyFileSymlinkNoOpenat2(t *testing.T) {
	p := keyFile(t, 0o600)
	link := filepath.Join(filepath.Dir(p), "link.key")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	disableOpenat2(t)
	_, err := ReadKeyFile(link, ReadOptions{})
	wantErr(t, err, ErrSymlink)
}

func TestReadKeyFileSymlinkedParentNoOpenat2(t *testing.T) {
	p := keyFile(t, 0o600)
	linkDir := filepath.Join(testDir(t), "etc-ov")
	if err := os.Symlink(filepath.Dir(p), linkDir); err != nil {
		t.Fatal(err)
	}
	disableOpenat2(t)
	_, err := ReadKeyFile(filepath.Join(linkDir, "myapp.key"), ReadOptions{})
	wantErr(t, err, ErrSymlink, linkDir)
}

func TestReadKeyFileHardLink(t *testing.T) {
	p := keyFile(t, 0o600)
	other := filepath.Join(filepath.Dir(p), "second-name")
	if err := os.Link(p, other); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p, other} {
		_, err := ReadKeyFile(path, ReadOptions{})
		wantErr(t, err, ErrHardLinked, path, "has 2 hard links")
	}
}

func TestReadKeyFileWrongOwner(t *testing.T) {
	needRoot(t)
	p := makeFile(t, filepath.Join(testDir(t), "myapp.key"), testKey(32), 0o600, nobody, nobody)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrWrongOwner, p, "is owned by uid 65534", "want uid 0")
}

// A root-owned file that nobody can read is still refused when read as
// nobody: it belongs to someone else.
func TestReadKeyFileWrongOwnerUnprivileged(t *testing.T) {
	p := nobodyKey(t, 0o600, testKey(32))
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	runAsNobody(t, map[string]string{"OV_OP": "readkey", "OV_PATH": p, "OV_WANT": "ErrWrongOwner", "OV_WANT_MSG": "is owned by uid 0|want uid 65534"})
}

func TestReadKeyFileWithOwner(t *testing.T) {
	p := nobodyKey(t, 0o400, testKey(32))
	readOK(t, p, testKey(32), ReadOptions{}.WithOwner(nobody))
}

func TestReadKeyFileFIFO(t *testing.T) {
	p := filepath.Join(testDir(t), "myapp.key")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadKeyFile(p, ReadOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		wantErr(t, err, ErrNotRegular, "FIFO")
	case <-time.After(5 * time.Second):
		t.Fatal("ReadKeyFile blocked on a FIFO")
	}
}

func TestReadKeyFileDirectory(t *testing.T) {
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrNotRegular, "is a directory")
}

func TestReadKeyFileDevice(t *testing.T) {
	_, err := ReadKeyFile("/dev/null", ReadOptions{})
	wantErr(t, err, ErrNotRegular, "/dev/null", "character device")
}

func TestReadKeyFileSocket(t *testing.T) {
	p := filepath.Join(testDir(t), "myapp.key")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skipf("cannot create a unix socket: %v", err)
	}
	defer l.Close()
	_, err = ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrNotRegular)
}

func sizeCase(t *testing.T, n int) {
	t.Helper()
	uid, gid := me()
	p := makeFile(t, filepath.Join(testDir(t), "myapp.key"), testKey(n), 0o600, uid, gid)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrWrongSize, p)
	want := "read machine key " + p + ": is " + strconv.Itoa(n) + " bytes, want 32"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
}

func TestReadKeyFileSize31(t *testing.T) { sizeCase(t, 31) }
func TestReadKeyFileSize33(t *testing.T) { sizeCase(t, 33) }
func TestReadKeyFileSize0(t *testing.T)  { sizeCase(t, 0) }

func TestReadKeyFileWorldWritableDir(t *testing.T) {
	uid, gid := me()
	d := mkdir(t, filepath.Join(testDir(t), "shared"), 0o777, uid, gid)
	p := makeFile(t, filepath.Join(d, "myapp.key"), testKey(32), 0o600, uid, gid)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrUnsafeDir, "directory "+d+" is world-writable (mode 0777)")
}

func TestReadKeyFileStickyWorldWritableDir(t *testing.T) {
	uid, gid := me()
	d := mkdir(t, filepath.Join(testDir(t), "shared"), 0o777|os.ModeSticky, uid, gid)
	p := makeFile(t, filepath.Join(d, "myapp.key"), testKey(32), 0o600, uid, gid)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrUnsafeDir, "directory "+d+" is world-writable (mode 1777)")
}

// The directory itself is private, but /tmp above it is world-writable.
func TestReadKeyFileUnderTmp(t *testing.T) {
	st, err := os.Stat("/tmp")
	if err != nil || st.Mode().Perm()&0o002 == 0 {
		t.Skip("/tmp is missing or not world-writable here")
	}
	d, err := os.MkdirTemp("/tmp", "ov-credentials-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	uid, gid := me()
	p := makeFile(t, filepath.Join(d, "myapp.key"), testKey(32), 0o600, uid, gid)
	_, err = ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrUnsafeDir, p, "directory /tmp is world-writable")
}

func TestReadKeyFileGroupWritableAncestor(t *testing.T) {
	uid, gid := me()
	a := mkdir(t, filepath.Join(testDir(t), "a"), 0o775, uid, gid)
	b := mkdir(t, filepath.Join(a, "b"), 0o700, uid, gid)
	p := makeFile(t, filepath.Join(b, "myapp.key"), testKey(32), 0o600, uid, gid)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrUnsafeDir, "directory "+a+" is group-writable (mode 0775)")
}

func TestReadKeyFileAncestorOwnedByOther(t *testing.T) {
	needRoot(t)
	a := mkdir(t, filepath.Join(testDir(t), "a"), 0o755, otherUID, otherUID)
	p := makeFile(t, filepath.Join(a, "myapp.key"), testKey(32), 0o600, 0, 0)
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, ErrUnsafeDir, "directory "+a+" is owned by uid 4242", "want root")
}

func TestReadKeyFileMissing(t *testing.T) {
	p := filepath.Join(testDir(t), "nope.key")
	_, err := ReadKeyFile(p, ReadOptions{})
	wantErr(t, err, fs.ErrNotExist, p)
}

func TestReadKeyFileRelativePath(t *testing.T) {
	p := keyFile(t, 0o600)
	t.Chdir(filepath.Dir(p))
	readOK(t, "myapp.key", testKey(32), ReadOptions{})
}

func TestReadSecretFile(t *testing.T) {
	uid, gid := me()
	data := []byte("correct horse battery staple\n")
	p := makeFile(t, filepath.Join(testDir(t), "password"), data, 0o600, uid, gid)
	b, err := ReadSecretFile(p, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	if !bytes.Equal(b.Bytes(), data) {
		t.Fatalf("read %q", b.Bytes())
	}
}

func TestReadSecretFile0640(t *testing.T) {
	uid, gid := me()
	p := makeFile(t, filepath.Join(testDir(t), "password"), []byte("pw"), 0o640, uid, gid)
	_, err := ReadSecretFile(p, ReadOptions{})
	wantErr(t, err, ErrBadMode, "read secret file "+p+": mode 0640 is too open")
}

func TestReadSecretFileEmpty(t *testing.T) {
	uid, gid := me()
	p := makeFile(t, filepath.Join(testDir(t), "password"), nil, 0o600, uid, gid)
	_, err := ReadSecretFile(p, ReadOptions{})
	wantErr(t, err, ErrWrongSize, "is empty")
}

func TestReadSecretFileTooLarge(t *testing.T) {
	uid, gid := me()
	p := makeFile(t, filepath.Join(testDir(t), "config"), make([]byte, 100), 0o600, uid, gid)
	_, err := ReadSecretFile(p, ReadOptions{MaxSize: 99})
	wantErr(t, err, ErrWrongSize, "is 100 bytes, want at most 99")
}

// Another process replacing the file by an atomic rename while it is read (as two ov commands do
// with their shared state files) is not an error: the reader opens the new file.
func TestReadSecretFileReplacedWhileRead(t *testing.T) {
	path := filepath.Join(testDir(t), "state.json")
	if err := WriteFileAtomic(path, []byte(`{"n":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			if err := WriteFileAtomic(path, []byte(`{"n":`+strconv.Itoa(i)+`}`), 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			t.Logf("%d reads while the file was replaced 1000 times", reads)
			return
		default:
		}
		b, err := ReadSecretFile(path, ReadOptions{})
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		b.Destroy()
	}
}

// ReadPrivateFile applies the checks of a secret file (mode, owner, symlinks, size, unsafe
// directories); only the memory it reads into differs.
func TestReadPrivateFile(t *testing.T) {
	uid, gid := me()
	dir := testDir(t)
	data := []byte("ciphertext and floors\n")
	p := makeFile(t, filepath.Join(dir, "state"), data, 0o600, uid, gid)
	b, err := ReadPrivateFile(p, ReadOptions{What: "state file"})
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadPrivateFile = %q, %v", b, err)
	}
	open := makeFile(t, filepath.Join(dir, "open"), data, 0o644, uid, gid)
	_, err = ReadPrivateFile(open, ReadOptions{What: "state file"})
	wantErr(t, err, ErrBadMode, "read state file "+open+": mode 0644 is too open")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	_, err = ReadPrivateFile(link, ReadOptions{})
	wantErr(t, err, ErrSymlink, "read file "+link)
	_, err = ReadPrivateFile(p, ReadOptions{MaxSize: 3})
	wantErr(t, err, ErrWrongSize, "want at most 3")
	if os.Geteuid() == 0 {
		theirs := makeFile(t, filepath.Join(dir, "theirs"), data, 0o600, nobody, nobody)
		_, err = ReadPrivateFile(theirs, ReadOptions{})
		wantErr(t, err, ErrWrongOwner)
	}
}
