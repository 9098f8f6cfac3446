// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// historyVectors are the known answers of the chained manifest (ov/v2/manifest) and of the value
// fingerprint (docs/design/crypto.md §1.6.1, §1.6.2). They live in their own file so that
// vectors.json never changes.
type historyVectors struct {
	Note   string `json:"note"`
	Inputs struct {
		SignSeed  string `json:"sign_seed"`
		EK        string `json:"ek"`
		AccountID string `json:"account_id"`
		AppID     string `json:"app_id"`
		EnvID     string `json:"env_id"`
		Epoch     uint32 `json:"epoch"`
		Seq       uint64 `json:"seq"`
		IssuedAt  uint64 `json:"issued_at"`
		PrevRaw   string `json:"prev_manifest"` // the raw bytes of seq-1's manifest
		Blind     string `json:"blind"`
		Version   uint64 `json:"version"`
		Record    string `json:"record_hash"`
		Name      string `json:"name"`
		Value     string `json:"value"`
	} `json:"inputs"`
	Manifest    string `json:"manifest"`
	Sig         string `json:"sig"`
	Fingerprint string `json:"fingerprint"`
}

// TestHistoryVectors checks the chained manifest byte for byte against a layout assembled here by
// hand, its signature, and the fingerprint against a computation with the standard library only.
func TestHistoryVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/vectors_history.json")
	if err != nil {
		t.Fatal(err)
	}
	var v historyVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	in := v.Inputs
	aid, app, env := unhex(t, in.AccountID), unhex(t, in.AppID), unhex(t, in.EnvID)
	ek := &EnvKey{keyFrom(unhex(t, in.EK))}
	defer ek.Wipe()
	sk := &SigningKey{keyFrom(unhex(t, in.SignSeed))}
	defer sk.Wipe()
	scope := Scope{AccountID: aid, AppID: app, EnvID: env, Epoch: in.Epoch}
	c, err := NewEnvCipher(ek, scope)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Wipe()
	prevRaw := unhex(t, in.PrevRaw)
	m := c.Manifest(in.Seq, in.IssuedAt, []envelope.ManifestEntry{{Blind: unhex(t, in.Blind), Version: in.Version, RecordHash: unhex(t, in.Record)}})
	m.Prev = ChainPrev(prevRaw, in.Seq-1)
	raw, sig, err := sk.SignManifest(m)
	if err != nil {
		t.Fatal(err)
	}

	// The layout, assembled independently of Marshal.
	lp := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	var want []byte
	want = append(want, lp([]byte("ov/v2/manifest"))...)
	want = append(want, lp(aid)...)
	want = append(want, lp(app)...)
	want = append(want, lp(env)...)
	want = binary.BigEndian.AppendUint32(want, in.Epoch)
	id := c.EKID()
	want = append(want, lp(id[:])...)
	want = binary.BigEndian.AppendUint64(want, in.Seq)
	want = binary.BigEndian.AppendUint64(want, in.IssuedAt)
	ph := sha256.Sum256(prevRaw)
	want = append(want, lp(ph[:])...)
	want = binary.BigEndian.AppendUint32(want, 1)
	want = append(want, lp(unhex(t, in.Blind))...)
	want = binary.BigEndian.AppendUint64(want, in.Version)
	want = append(want, lp(unhex(t, in.Record))...)
	if !bytes.Equal(raw, want) {
		t.Fatalf("chained manifest layout differs:\n got %x\nwant %x", raw, want)
	}

	fp, err := Fingerprint(ek, scope, in.Name, []byte(in.Value))
	if err != nil {
		t.Fatal(err)
	}
	// fp_key = HKDF-SHA256(EK, salt ∅, info lp("ov/v1/value-fp") ‖ ctx); fp = HMAC(fp_key, lp(name) ‖ value)[:8].
	info := append(lp([]byte("ov/v1/value-fp")), lp(aid)...)
	info = append(info, lp(app)...)
	info = append(info, lp(env)...)
	info = binary.BigEndian.AppendUint32(info, in.Epoch)
	key, err := hkdf.Key(sha256.New, unhex(t, in.EK), nil, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write(lp([]byte(in.Name)))
	h.Write([]byte(in.Value))
	if wantFP := hex.EncodeToString(h.Sum(nil)[:FingerprintLen]); fp != wantFP {
		t.Fatalf("fingerprint %s, independent computation %s", fp, wantFP)
	}

	if os.Getenv("OV_WRITE_HISTORY_VECTORS") == "1" {
		v.Manifest, v.Sig, v.Fingerprint = hex.EncodeToString(raw), hex.EncodeToString(sig), fp
		out, _ := json.MarshalIndent(&v, "", "  ")
		if err := os.WriteFile("testdata/vectors_history.json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("wrote testdata/vectors_history.json")
	}
	if hex.EncodeToString(raw) != v.Manifest || hex.EncodeToString(sig) != v.Sig || fp != v.Fingerprint {
		t.Fatal("chained manifest, signature or fingerprint differs from testdata/vectors_history.json")
	}
	if !ed25519.Verify(sk.Public(), raw, sig) {
		t.Fatal("vector signature does not verify")
	}
	parsed, err := envelope.ParseManifest(raw)
	if err != nil || !bytes.Equal(parsed.Prev, ph[:]) {
		t.Fatalf("parse chained manifest: %v", err)
	}
	if !bytes.Equal(parsed.Marshal(), raw) {
		t.Fatal("chained manifest does not round-trip")
	}
}

// chainFixture signs n consecutive chained manifests for one environment.
func chainFixture(t *testing.T, n int, firstUnchained int) ([]ChainLink, ManifestCheck, *SigningKey) {
	t.Helper()
	sk := NewSigningKey()
	aid, app, env := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 16)
	ek := NewEnvKey()
	defer ek.Wipe()
	c, err := NewEnvCipher(ek, Scope{AccountID: aid, AppID: app, EnvID: env, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Wipe()
	var links []ChainLink
	var prev []byte
	for i := 1; i <= n; i++ {
		m := c.Manifest(uint64(i), 1767225600+uint64(i), nil)
		if i > firstUnchained {
			m.Prev = ChainPrev(prev, uint64(i-1))
		}
		raw, sig, err := sk.SignManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, ChainLink{Raw: raw, Sig: sig})
		prev = raw
	}
	return links, ManifestCheck{PublicKey: sk.Public(), AccountID: aid, AppID: app, EnvID: env}, sk
}

// TestVerifyHistoryAttacks performs each rewrite a server could make to a history and requires
// VerifyHistory to refuse it.
func TestVerifyHistoryAttacks(t *testing.T) {
	links, chk, sk := chainFixture(t, 5, 0)
	defer sk.Wipe()
	if ms, err := VerifyHistory(links, chk); err != nil || len(ms) != 5 {
		t.Fatalf("honest history: %d, %v", len(ms), err)
	}
	drop := append(append([]ChainLink{}, links[:2]...), links[3:]...)
	reorder := append([]ChainLink{}, links...)
	reorder[1], reorder[2] = reorder[2], reorder[1]
	// A forged middle manifest, validly signed (a stolen key would be needed) but not the one the
	// chain names: its successor's prev does not match.
	c := append([]ChainLink{}, links...)
	m, _ := envelope.ParseManifest(links[2].Raw)
	m.IssuedAt++
	raw, sig, _ := sk.SignManifest(m)
	c[2] = ChainLink{Raw: raw, Sig: sig}
	bad := append([]ChainLink{}, links...)
	bad[3] = ChainLink{Raw: links[3].Raw, Sig: links[2].Sig}
	cut := links[1:]
	for name, tc := range map[string]struct {
		links []ChainLink
		hw    uint64
		want  error
	}{
		"drop middle":     {drop, 0, ErrBrokenHistory},
		"reorder":         {reorder, 0, ErrBrokenHistory},
		"replace middle":  {c, 0, ErrBrokenHistory},
		"bad signature":   {bad, 0, ErrBadSignature},
		"cut the oldest":  {cut, 0, ErrBrokenHistory},
		"cut the newest":  {links[:4], 5, ErrRollback},
		"empty after use": {nil, 3, ErrRollback},
	} {
		if _, err := VerifyHistory(tc.links, ManifestCheck{PublicKey: chk.PublicKey, AccountID: chk.AccountID, AppID: chk.AppID, EnvID: chk.EnvID, HighWater: tc.hw}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}

	// Old unchained manifests still verify, and the chain starts at the first chained one; a
	// history kept from before chaining may start at any seq.
	mixed, chk2, sk2 := chainFixture(t, 5, 2)
	defer sk2.Wipe()
	if _, err := VerifyHistory(mixed, chk2); err != nil {
		t.Fatalf("history unchained then chained: %v", err)
	}
	if _, err := VerifyHistory(mixed[1:], chk2); err != nil {
		t.Fatalf("history kept from an unchained seq 2: %v", err)
	}
	down := append([]ChainLink{}, mixed[:4]...)
	m2, _ := envelope.ParseManifest(mixed[4].Raw)
	m2.Prev = nil
	raw2, sig2, _ := sk2.SignManifest(m2)
	down = append(down, ChainLink{Raw: raw2, Sig: sig2})
	if _, err := VerifyHistory(down, chk2); !errors.Is(err, ErrBrokenHistory) {
		t.Fatalf("unchained after chained: %v", err)
	}
}

// TestHistoryVectorsCryptoMD checks that crypto.md §1.6.2 quotes the fingerprint vector.
func TestHistoryVectorsCryptoMD(t *testing.T) {
	md, err := os.ReadFile("../../docs/design/crypto.md")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/vectors_history.json")
	if err != nil {
		t.Fatal(err)
	}
	var v historyVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(md, []byte("#### 1.6.2"))
	end := bytes.Index(md, []byte("### 1.7"))
	if start < 0 || end < start {
		t.Fatal("crypto.md has no §1.6.2")
	}
	if !bytes.Contains(md[start:end], []byte("`"+v.Fingerprint+"`")) {
		t.Fatalf("crypto.md §1.6.2 does not quote the fingerprint vector %s", v.Fingerprint)
	}
}
