// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestAccountSecretKeyText(t *testing.T) {
	k := NewAccountSecretKey()
	defer k.Wipe()
	text := k.Text()
	if !regexp.MustCompile(`^OV1(-[A-Z2-7]{1,6}){9}$`).Match(text) {
		t.Fatalf("Text() = %q: not the Emergency Kit format", text)
	}
	for _, typed := range []string{string(text), strings.ToLower(string(text)), strings.ReplaceAll(string(text), "-", " ") + "\n"} {
		got, err := ParseAccountSecretKey([]byte(typed))
		if err != nil {
			t.Fatalf("parse %q: %v", typed, err)
		}
		if !bytes.Equal(got.Bytes(), k.Bytes()) {
			t.Errorf("parse %q: another key", typed)
		}
		got.Wipe()
	}
	// One mistyped character is caught by the checksum, before any KDF.
	typo := bytes.Clone(text)
	i := bytes.LastIndexByte(typo, '-') + 1
	if typo[i] == 'A' {
		typo[i] = 'B'
	} else {
		typo[i] = 'A'
	}
	if _, err := ParseAccountSecretKey(typo); !errors.Is(err, ErrASKChecksum) {
		t.Errorf("typo: %v; want ErrASKChecksum", err)
	}
	for _, bad := range []string{"", "OV1", "OV2-" + string(text[4:]), string(text[:len(text)-1]), string(text) + "A", "OV1-!!!!!!"} {
		if _, err := ParseAccountSecretKey([]byte(bad)); !errors.Is(err, ErrASKFormat) && !errors.Is(err, ErrASKChecksum) {
			t.Errorf("parse %q: %v; want a format error", bad, err)
		}
	}
}

// TestAccountSecretKeyTextStable pins the format: kits printed by earlier versions must still parse.
func TestAccountSecretKeyTextStable(t *testing.T) {
	k, err := AccountSecretKeyFromBytes(bytes.Repeat([]byte{0}, KeyLen))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Wipe()
	const want = "OV1-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAPY" // as ov 0.x printed it
	if got := string(k.Text()); got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
}
