// SPDX-License-Identifier: Apache-2.0

//go:build linux

package credentials

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func setUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantFile(t *testing.T, path string, data []byte, perm os.FileMode, uid, gid int) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s holds %q, want %q", path, got, data)
	}
	st := statOf(t, path)
	if m := os.FileMode(st.Mode & 0o7777); m != perm {
		t.Errorf("%s has mode %04o, want %04o", path, m, perm)
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
	if st.Nlink != 1 {
		t.Errorf("%s has %d links", path, st.Nlink)
	}
}

// wantOnly fails t if dir holds anything but names (e.g. a temporary file).
func wantOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	got := entries(t, dir)
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestWriteKeyFileUmask000(t *testing.T) {
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	setUmask(t, 0)
	if err := WriteKeyFile(p, testKey(32), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, gid := me()
	wantFile(t, p, testKey(32), 0o600, uid, gid)
	wantOnly(t, d, "myapp.key")
}

func TestWriteKeyFileWithOwner(t *testing.T) {
	needRoot(t)
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	setUmask(t, 0)
	if err := WriteKeyFile(p, testKey(32), WriteOptions{}.WithOwner(nobody, nobody)); err != nil {
		t.Fatal(err)
	}
	wantFile(t, p, testKey(32), 0o600, nobody, nobody)
	runAsNobody(t, map[string]string{"OV_OP": "readkey", "OV_PATH": p, "OV_WANT": "ok", "OV_DATA": hex.EncodeToString(testKey(32))})
}

func TestWriteKeyFileRoundTrip(t *testing.T) {
	p := filepath.Join(testDir(t), "myapp.key")
	if err := WriteKeyFile(p, testKey(32), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	readOK(t, p, testKey(32), ReadOptions{})
}

func TestWriteKeyFileForceOver0644(t *testing.T) {
	d := testDir(t)
	uid, gid := me()
	p := makeFile(t, filepath.Join(d, "myapp.key"), []byte("old key, world-readable"), 0o644, uid, gid)
	if err := WriteKeyFile(p, testKey(32), WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, p, testKey(32), 0o600, uid, gid)
	wantOnly(t, d, "myapp.key")
}

func TestWriteKeyFileNoForceRefusesExisting(t *testing.T) {
	d := testDir(t)
	uid, gid := me()
	old := []byte("existing key")
	p := makeFile(t, filepath.Join(d, "myapp.key"), old, 0o600, uid, gid)
	err := WriteKeyFile(p, testKey(32), WriteOptions{})
	wantErr(t, err, ErrExists, "write machine key "+p+": ", "--force")
	wantErr(t, err, fs.ErrExist)
	wantFile(t, p, old, 0o600, uid, gid)
	wantOnly(t, d, "myapp.key")
}

// Another writer creates the file after our existence check and before we
// publish: RENAME_NOREPLACE must refuse, and the temporary file must go.
func raceCase(t *testing.T) {
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	racer := []byte("the other writer's key")
	testHookBeforePublish = func() {
		if err := os.WriteFile(p, racer, 0o600); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookBeforePublish = nil })
	err := WriteKeyFile(p, testKey(32), WriteOptions{})
	wantErr(t, err, ErrExists, p)
	got, rerr := os.ReadFile(p)
	if rerr != nil || !bytes.Equal(got, racer) {
		t.Fatalf("existing file replaced: %q, %v", got, rerr)
	}
	wantOnly(t, d, "myapp.key")
}

func TestWriteKeyFileNoForceRace(t *testing.T) { raceCase(t) }

func TestWriteKeyFileNoForceRaceLinkFallback(t *testing.T) {
	renameat2Disabled = true
	t.Cleanup(func() { renameat2Disabled = false })
	raceCase(t)
}

func TestWriteKeyFileLinkFallback(t *testing.T) {
	renameat2Disabled = true
	t.Cleanup(func() { renameat2Disabled = false })
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	if err := WriteKeyFile(p, testKey(32), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	uid, gid := me()
	wantFile(t, p, testKey(32), 0o600, uid, gid)
	wantOnly(t, d, "myapp.key")
}

// Several writers, all past the existence check before any publishes:
// exactly one wins, the file holds its key, and nothing else is left.
func TestWriteKeyFileNoForceConcurrent(t *testing.T) {
	const writers = 4
	for round := range 10 {
		d := testDir(t)
		p := filepath.Join(d, "myapp.key")
		var arrived sync.WaitGroup
		arrived.Add(writers)
		testHookBeforePublish = func() { arrived.Done(); arrived.Wait() }
		errs := make([]error, writers)
		var done sync.WaitGroup
		for i := range writers {
			done.Go(func() {
				errs[i] = WriteKeyFile(p, bytes.Repeat([]byte{byte('a' + i)}, 32), WriteOptions{})
			})
		}
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("writers did not finish")
		}
		testHookBeforePublish = nil
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both succeeded", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrExists):
				t.Fatalf("round %d: writer %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer succeeded", round)
		}
		uid, gid := me()
		wantFile(t, p, bytes.Repeat([]byte{byte('a' + winner)}, 32), 0o600, uid, gid)
		wantOnly(t, d, "myapp.key")
	}
}

func TestWriteKeyFileTempCleanedOnFailure(t *testing.T) {
	d := testDir(t)
	p := filepath.Join(d, "myapp.key")
	if err := os.Mkdir(p, 0o700); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	err := WriteKeyFile(p, testKey(32), WriteOptions{Force: true})
	wantErr(t, err, nil, p)
	wantOnly(t, d, "myapp.key")
}

// As nobody, giving the file to root fails at chown, after the temporary
// file exists: it must be removed.
func TestWriteKeyFileTempCleanedOnChownFailureUnprivileged(t *testing.T) {
	needRoot(t)
	d := mkdir(t, filepath.Join(testDir(t), "svc"), 0o700, nobody, nobody)
	runAsNobody(t, map[string]string{"OV_OP": "write-as-root", "OV_PATH": filepath.Join(d, "myapp.key"), "OV_WANT": "ErrPermission", "OV_WANT_MSG": "set owner to uid 0", "OV_DATA": hex.EncodeToString(testKey(32))})
	wantOnly(t, d)
}

func TestWriteKeyFileWorldWritableDir(t *testing.T) {
	uid, gid := me()
	d := mkdir(t, filepath.Join(testDir(t), "shared"), 0o777|os.ModeSticky, uid, gid)
	err := WriteKeyFile(filepath.Join(d, "myapp.key"), testKey(32), WriteOptions{})
	wantErr(t, err, ErrUnsafeDir, "directory "+d+" is world-writable")
	wantOnly(t, d)
}

func TestWriteKeyFileSymlinkedDir(t *testing.T) {
	real := testDir(t)
	link := filepath.Join(testDir(t), "etc-ov")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	err := WriteKeyFile(filepath.Join(link, "myapp.key"), testKey(32), WriteOptions{})
	wantErr(t, err, ErrSymlink, link)
	wantOnly(t, real)
}

func TestWriteKeyFileNoOpenat2(t *testing.T) {
	d := testDir(t)
	disableOpenat2(t)
	p := filepath.Join(d, "myapp.key")
	if err := WriteKeyFile(p, testKey(32), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	readOK(t, p, testKey(32), ReadOptions{})
}

func TestWriteFileAtomic(t *testing.T) {
	d := testDir(t)
	uid, gid := me()
	p := makeFile(t, filepath.Join(d, "config"), []byte("old"), 0o644, uid, gid)
	setUmask(t, 0)
	if err := WriteFileAtomic(p, []byte("new config"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFile(t, p, []byte("new config"), 0o600, uid, gid)
	wantOnly(t, d, "config")
}
