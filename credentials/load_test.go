// SPDX-License-Identifier: Apache-2.0

//go:build linux

package credentials

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLoadInvalidName(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", testDir(t))
	for _, name := range []string{"", ".", "..", "a/b", "/etc/shadow", "../x", "a\x00b", string(make([]byte, 256))} {
		_, err := Load(name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("Load(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestLoadNotUnderSystemd(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	_, err := Load("ov-myapp")
	wantErr(t, err, ErrNotUnderSystemd, `load credential "ov-myapp": $CREDENTIALS_DIRECTORY is not set`)
}

func TestLoadMissing(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", testDir(t))
	_, err := Load("ov-myapp")
	wantErr(t, err, fs.ErrNotExist, `credential "ov-myapp" was not passed to this unit`)
}

// credDir makes a credentials directory like systemd's (ramfs variant when
// owner is the service user).
func credDir(t *testing.T, perm os.FileMode, uid, gid int) string {
	t.Helper()
	d := mkdir(t, filepath.Join(testDir(t), "myapp.service"), perm, uid, gid)
	t.Setenv("CREDENTIALS_DIRECTORY", d)
	return d
}

func TestLoad(t *testing.T) {
	uid, gid := me()
	d := credDir(t, 0o500, uid, gid)
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	makeFile(t, filepath.Join(d, "ov-myapp"), testKey(32), 0o400, uid, gid)
	if err := os.Chmod(d, 0o500); err != nil {
		t.Fatal(err)
	}
	b, err := Load("ov-myapp")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	if !bytes.Equal(b.Bytes(), testKey(32)) {
		t.Fatal("wrong contents")
	}
}

func TestLoadWithSize(t *testing.T) {
	uid, gid := me()
	d := credDir(t, 0o700, uid, gid)
	p := makeFile(t, filepath.Join(d, "ov-myapp"), testKey(31), 0o400, uid, gid)
	_, err := LoadWith("ov-myapp", ReadOptions{Size: MachineKeySize})
	wantErr(t, err, ErrWrongSize, "read credential "+p+": is 31 bytes, want 32")
}

func TestLoadBadMode(t *testing.T) {
	uid, gid := me()
	d := credDir(t, 0o700, uid, gid)
	makeFile(t, filepath.Join(d, "ov-myapp"), testKey(32), 0o644, uid, gid)
	_, err := Load("ov-myapp")
	wantErr(t, err, ErrBadMode, "mode 0644")
}

// systemd with ramfs chowns the credential to the service user.
func TestLoadUnprivileged(t *testing.T) {
	needRoot(t)
	d := credDir(t, 0o500, nobody, nobody)
	makeFile(t, filepath.Join(d, "ov-myapp"), testKey(32), 0o400, nobody, nobody)
	runAsNobody(t, map[string]string{"OV_OP": "load", "OV_NAME": "ov-myapp", "CREDENTIALS_DIRECTORY": d, "OV_WANT": "ok", "OV_SIZE": "32", "OV_DATA": hex.EncodeToString(testKey(32))})
}

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// setACL writes a POSIX access ACL, as setfacl(1) would.
func setACL(t *testing.T, path string, entries ...aclEntry) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	if err := unix.Setxattr(path, aclXattr, b, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("no POSIX ACLs on this file system: %v", err)
		}
		t.Fatal(err)
	}
}

const undefinedID = ^uint32(0)

// systemdCred lays out what systemd (≥ 254, tmpfs or plain directory) makes
// for a unit with User=nobody: a root-owned 0700 directory and 0400 file,
// each with an ACL granting nobody (and, with extra, someone else) access.
func systemdCred(t *testing.T, extra ...aclEntry) string {
	t.Helper()
	needRoot(t)
	d := credDir(t, 0o700, 0, 0)
	p := makeFile(t, filepath.Join(d, "ov-myapp"), testKey(32), 0o400, 0, 0)
	setACL(t, d,
		aclEntry{aclUserObj, 7, undefinedID}, aclEntry{aclUser, 5, nobody},
		aclEntry{aclGroupObj, 0, undefinedID}, aclEntry{aclMask, 5, undefinedID}, aclEntry{aclOther, 0, undefinedID})
	setACL(t, p, append([]aclEntry{
		{aclUserObj, 4, undefinedID}, {aclUser, 4, nobody}},
		append(extra, aclEntry{aclGroupObj, 0, undefinedID}, aclEntry{aclMask, 4, undefinedID}, aclEntry{aclOther, 0, undefinedID})...)...)
	if m := statOf(t, p).Mode & 0o777; m != 0o440 {
		t.Fatalf("credential has mode %04o after setting the ACL, want 0440", m)
	}
	return d
}

func TestLoadSystemdACLUnprivileged(t *testing.T) {
	d := systemdCred(t)
	runAsNobody(t, map[string]string{"OV_OP": "load", "OV_NAME": "ov-myapp", "CREDENTIALS_DIRECTORY": d, "OV_WANT": "ok", "OV_SIZE": "32", "OV_DATA": hex.EncodeToString(testKey(32))})
}

// An ACL that also lets another user read the credential is refused.
func TestLoadSystemdACLOtherUserRefused(t *testing.T) {
	d := systemdCred(t, aclEntry{aclUser, 4, otherUID})
	runAsNobody(t, map[string]string{"OV_OP": "load", "OV_NAME": "ov-myapp", "CREDENTIALS_DIRECTORY": d, "OV_WANT": "ErrWrongOwner", "OV_WANT_MSG": "is owned by uid 0"})
}

// The ACL exception is for Load only: ReadKeyFile wants the caller's file.
func TestReadKeyFileRefusesSystemdACL(t *testing.T) {
	d := systemdCred(t)
	runAsNobody(t, map[string]string{"OV_OP": "readkey", "OV_PATH": filepath.Join(d, "ov-myapp"), "OV_WANT": "ErrWrongOwner"})
}
