// SPDX-License-Identifier: Apache-2.0

package envelope

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// vecs reads the known-answer vectors kept (verbatim) by internal/vault.
type vecs struct {
	AccountKeyWrap struct{ Wrapped string } `json:"account_key_wrap"`
	APIKey         struct {
		ServerVerifier string `json:"server_verifier"`
		Token          string
	} `json:"api_key"`
	EnvKey struct{ Wrapped string } `json:"env_key"`
	Inputs struct {
		AccountID    string `json:"account_id"`
		AppID        string `json:"app_id"`
		EnvID        string `json:"env_id"`
		APIKeyID     string `json:"api_key_id"`
		APIKeySecret string `json:"api_key_secret"`
	}
	KDF struct {
		LoginAuth     string `json:"login_auth"`
		LoginVerifier string `json:"login_verifier"`
	}
	Machine struct {
		EnvKeyWrap      string `json:"env_key_wrap"`
		AccountWrap     string `json:"account_wrap"`
		GrantBytes      string `json:"grant_bytes"`
		MachineAuth     string `json:"machine_auth"`
		MachineID       string `json:"machine_id"`
		MachineVerifier string `json:"machine_verifier"`
		X25519Pub       string `json:"x25519_pub"`
	}
	Manifest struct{ Bytes string }
	Secrets  []struct {
		Record       string
		BlindID      string `json:"blind_id"`
		RecordSHA256 string `json:"record_sha256"`
	}
}

func loadVecs(t testing.TB) *vecs {
	t.Helper()
	b, err := os.ReadFile("../vault/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vecs
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifestVector(t *testing.T) {
	v := loadVecs(t)
	raw := unhex(t, v.Manifest.Bytes)
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 42 || m.IssuedAt != 1767225600 || m.Epoch != 1 || len(m.Entries) != 2 ||
		hex.EncodeToString(m.AccountID) != v.Inputs.AccountID || hex.EncodeToString(m.AppID) != v.Inputs.AppID ||
		hex.EncodeToString(m.EnvID) != v.Inputs.EnvID {
		t.Fatalf("parsed %+v", m)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Marshal(), raw) {
		t.Fatal("Marshal does not reproduce the vector")
	}
	// Marshal sorts entries and leaves m alone.
	m.Entries[0], m.Entries[1] = m.Entries[1], m.Entries[0]
	first := m.Entries[0].Blind
	if !bytes.Equal(m.Marshal(), raw) || !bytes.Equal(m.Entries[0].Blind, first) {
		t.Fatal("Marshal of reversed entries")
	}
	if e, ok := m.Lookup(unhex(t, v.Secrets[0].BlindID)); !ok || e.Version != 7 || hex.EncodeToString(e.RecordHash) != v.Secrets[0].RecordSHA256 {
		t.Fatalf("Lookup = %+v %v", e, ok)
	}
	if _, ok := m.Lookup(make([]byte, 16)); ok {
		t.Fatal("Lookup of an absent id")
	}
	// The parsed manifest does not alias the input.
	raw[20] ^= 0xff
	if m.AccountID[0] != 0xa0 {
		t.Fatal("ParseManifest aliases its input")
	}
}

func TestManifestStrict(t *testing.T) {
	v := loadVecs(t)
	raw := unhex(t, v.Manifest.Bytes)
	for n := range len(raw) {
		if _, err := ParseManifest(raw[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := ParseManifest(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("trailing byte: %v", err)
	}
	m, _ := ParseManifest(raw)
	entryOff := len(raw) - 2*manifestEntryLen
	cases := map[string][]byte{
		"label":           flipped(raw, 3),
		"long account id": (&Manifest{AccountID: make([]byte, 17), AppID: m.AppID, EnvID: m.EnvID, EKID: m.EKID}).Marshal(),
		"short ek id":     (&Manifest{AccountID: m.AccountID, AppID: m.AppID, EnvID: m.EnvID, EKID: m.EKID[:15]}).Marshal(),
		// Entries out of order (swap the two encoded entries).
		"unsorted": append(append(bytes.Clone(raw[:entryOff]), raw[entryOff+manifestEntryLen:]...), raw[entryOff:entryOff+manifestEntryLen]...),
		// The same entry twice.
		"duplicate": func() []byte {
			b := bytes.Clone(raw[:entryOff])
			b = append(b, raw[entryOff:entryOff+manifestEntryLen]...)
			return append(b, raw[entryOff:entryOff+manifestEntryLen]...)
		}(),
		"huge count": func() []byte {
			b := bytes.Clone(raw[:entryOff])
			b[len(b)-1], b[len(b)-2], b[len(b)-3], b[len(b)-4] = 0xff, 0xff, 0xff, 0xff
			return b
		}(),
		"hash 31 bytes": func() []byte {
			mm, _ := ParseManifest(raw)
			mm.Entries[0].RecordHash = mm.Entries[0].RecordHash[:31]
			return mm.Marshal()
		}(),
	}
	for name, b := range cases {
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dup, _ := ParseManifest(raw)
	dup.Entries = append(dup.Entries, dup.Entries[0])
	if err := dup.Validate(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Validate with a duplicate: %v", err)
	}
	empty := &Manifest{AccountID: m.AccountID, AppID: m.AppID, EnvID: m.EnvID, EKID: m.EKID, Seq: 1}
	back, err := ParseManifest(empty.Marshal())
	if err != nil || len(back.Entries) != 0 || !bytes.Equal(back.Marshal(), empty.Marshal()) {
		t.Errorf("empty manifest: %v", err)
	}
}

func TestGrantVector(t *testing.T) {
	v := loadVecs(t)
	raw := unhex(t, v.Machine.GrantBytes)
	g, err := ParseGrant(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.Marshal(), raw) {
		t.Fatal("Marshal does not reproduce the vector")
	}
	if hex.EncodeToString(g.MachineID) != v.Machine.MachineID || hex.EncodeToString(g.MachinePub) != v.Machine.X25519Pub ||
		g.NotBefore != 1767225600 || g.NotAfter != 0 || len(g.Scopes) != 1 {
		t.Fatalf("parsed %+v", g)
	}
	s, ok := g.Scope("myapp", "production")
	if !ok || s.SeqMin != 42 || hex.EncodeToString(s.EnvID) != v.Inputs.EnvID {
		t.Fatalf("Scope = %+v %v", s, ok)
	}
	for _, names := range [][2]string{{"myapp", "staging"}, {"production", "myapp"}, {"MyApp", "production"}, {"myapp", "production "}} {
		if _, ok := g.Scope(names[0], names[1]); ok {
			t.Errorf("Scope(%q, %q) found", names[0], names[1])
		}
	}
}

func TestGrantStrict(t *testing.T) {
	v := loadVecs(t)
	raw := unhex(t, v.Machine.GrantBytes)
	for n := range len(raw) {
		if _, err := ParseGrant(raw[:n]); err == nil {
			t.Fatalf("truncated to %d: accepted", n)
		}
	}
	if _, err := ParseGrant(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrTrailingData) {
		t.Fatal(err)
	}
	base := func() *Grant { g, _ := ParseGrant(raw); return g }
	cases := map[string]func(g *Grant){
		"NFD app name":       func(g *Grant) { g.Scopes[0].AppName = "cafe\u0301" },
		"empty env name":     func(g *Grant) { g.Scopes[0].EnvName = "" },
		"long name":          func(g *Grant) { g.Scopes[0].EnvName = strings.Repeat("e", MaxNameLen+1) },
		"invalid UTF-8":      func(g *Grant) { g.Scopes[0].AppName = "\xff" },
		"short machine id":   func(g *Grant) { g.MachineID = g.MachineID[:15] },
		"short pub":          func(g *Grant) { g.MachinePub = g.MachinePub[:31] },
		"duplicate ids":      func(g *Grant) { s := g.Scopes[0]; s.EnvName = "staging"; g.Scopes = append(g.Scopes, s) },
		"duplicate names":    func(g *Grant) { s := g.Scopes[0]; s.EnvID = make([]byte, 16); g.Scopes = append(g.Scopes, s) },
		"not_after ≤ before": func(g *Grant) { g.NotAfter = g.NotBefore },
	}
	for name, mut := range cases {
		g := base()
		mut(g)
		if err := g.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
		if _, err := ParseGrant(g.Marshal()); err == nil {
			t.Errorf("%s: ParseGrant accepted", name)
		}
	}
	g := base()
	g.Scopes = append(g.Scopes, GrantScope{AppID: g.Scopes[0].AppID, AppName: "myapp", EnvID: make([]byte, 16), EnvName: "caf\u00e9", SeqMin: 1})
	g.NotAfter = g.NotBefore + 1
	back, err := ParseGrant(g.Marshal())
	if err != nil || !bytes.Equal(back.Marshal(), g.Marshal()) {
		t.Fatalf("two scopes: %v", err)
	}
	if _, ok := back.Scope("myapp", "cafe\u0301"); !ok {
		t.Error("Scope lookup does not NFC-normalize its arguments")
	}
}

func TestTokens(t *testing.T) {
	v := loadVecs(t)
	var id [APIKeyIDLen]byte
	var secret [SecretLen]byte
	copy(id[:], unhex(t, v.Inputs.APIKeyID))
	copy(secret[:], unhex(t, v.Inputs.APIKeySecret))
	tok := FormatAPIToken(id, &secret)
	if string(tok) != v.APIKey.Token {
		t.Fatalf("token %s", tok)
	}
	gid, gsec, err := ParseAPIToken(tok)
	if err != nil || gid != id || gsec != secret {
		t.Fatalf("ParseAPIToken: %v", err)
	}
	ver := APIKeyVerifier(&secret)
	if hex.EncodeToString(ver[:]) != v.APIKey.ServerVerifier {
		t.Fatalf("verifier %x", ver)
	}
	if !VerifierMatches(ver, unhex(t, v.APIKey.ServerVerifier)) || VerifierMatches(ver, unhex(t, v.APIKey.ServerVerifier)[:31]) {
		t.Fatal("VerifierMatches")
	}
	good := v.APIKey.Token
	bad := map[string]string{
		"empty":             "",
		"no prefix":         good[4:],
		"other prefix":      "ovm_" + good[4:],
		"upper prefix":      "OVD_" + good[4:],
		"one short":         good[:len(good)-1],
		"one long":          good + "A",
		"padding":           good[:len(good)-2] + "==",
		"std alphabet":      strings.ReplaceAll(good, "_", "/"),
		"newline inside":    good[:10] + "\n" + good[11:],
		"CR replacing char": good[:10] + "\r" + good[11:],
		"space":             good[:len(good)-1] + " ",
		"nonzero pad bits":  good[:len(good)-1] + "x", // 'w' → 'x' sets a padding bit
	}
	for name, s := range bad {
		if _, _, err := ParseAPIToken([]byte(s)); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), good[4:20]) {
			t.Errorf("%s: error %q contains the token", name, err)
		}
	}

	var mid [IDLen]byte
	var auth [SecretLen]byte
	copy(mid[:], unhex(t, v.Machine.MachineID))
	copy(auth[:], unhex(t, v.Machine.MachineAuth))
	mt := FormatMachineToken(mid, &auth)
	if !strings.HasPrefix(string(mt), "ovm_") || len(mt) != 4+64 {
		t.Fatalf("machine token %q", mt)
	}
	gmid, gauth, err := ParseMachineToken(mt)
	if err != nil || gmid != mid || gauth != auth {
		t.Fatalf("ParseMachineToken: %v", err)
	}
	if _, _, err := ParseMachineToken(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("api token parsed as machine token: %v", err)
	}
	if _, _, err := ParseAPIToken(mt); !errors.Is(err, ErrBadToken) {
		t.Errorf("machine token parsed as api token: %v", err)
	}
	mv := MachineVerifier(&auth)
	if hex.EncodeToString(mv[:]) != v.Machine.MachineVerifier {
		t.Errorf("machine verifier %x", mv)
	}
	var la [SecretLen]byte
	copy(la[:], unhex(t, v.KDF.LoginAuth))
	lv := LoginVerifier(&la)
	if hex.EncodeToString(lv[:]) != v.KDF.LoginVerifier {
		t.Errorf("login verifier %x", lv)
	}
	if APIKeyVerifier(&la) == LoginVerifier(&la) || LoginVerifier(&la) == MachineVerifier(&la) {
		t.Error("verifier labels do not separate domains")
	}
}

func TestBlobChecks(t *testing.T) {
	v := loadVecs(t)
	for _, w := range []string{v.AccountKeyWrap.Wrapped, v.EnvKey.Wrapped} {
		b := unhex(t, w)
		if err := CheckWrappedKey(b); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 73, 75, 106} {
			if err := CheckWrappedKey(make([]byte, n)); !errors.Is(err, ErrBadLength) {
				t.Errorf("%d bytes: %v", n, err)
			}
		}
		if err := CheckWrappedKey(flipped(b, 1)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("suite: %v", err)
		}
		if err := CheckWrappedKey(flipped(b, 0)); !errors.Is(err, ErrBadHeader) {
			t.Errorf("version: %v", err)
		}
	}
	for _, w := range []string{v.Machine.EnvKeyWrap, v.Machine.AccountWrap} {
		b := unhex(t, w)
		if err := CheckMachineWrap(b); err != nil {
			t.Fatal(err)
		}
		if err := CheckMachineWrap(b[:105]); !errors.Is(err, ErrBadLength) {
			t.Error(err)
		}
		if err := CheckMachineWrap(flipped(b, 33)); !errors.Is(err, ErrBadHeader) {
			t.Error(err)
		}
		if err := CheckMachineWrap(flipped(b, 0)); err != nil {
			t.Error("eph_pub byte is not a header byte:", err)
		}
	}
	for _, s := range v.Secrets {
		b := unhex(t, s.Record)
		if err := CheckRecord(b); err != nil {
			t.Fatal(err)
		}
		if h := RecordHash(b); hex.EncodeToString(h[:]) != s.RecordSHA256 {
			t.Error("RecordHash")
		}
		if err := CheckRecord(flipped(b, 1)); !errors.Is(err, ErrBadHeader) {
			t.Error(err)
		}
	}
	if err := CheckRecord(make([]byte, MinRecordLen-1)); !errors.Is(err, ErrBadLength) {
		t.Error(err)
	}
	if err := CheckRecord(make([]byte, MaxRecordLen+1)); !errors.Is(err, ErrBadLength) {
		t.Error(err)
	}
	min := make([]byte, MinRecordLen)
	min[0], min[1] = 1, 1
	if err := CheckRecord(min); err != nil {
		t.Error(err)
	}
}

func TestReader(t *testing.T) {
	b := AppendLP(nil, []byte("abc"))
	b = AppendU16(b, 7)
	b = AppendU32(b, 8)
	b = AppendU64(b, 9)
	b = AppendLPString(b, "")
	r := NewReader(b)
	if string(r.LP("a")) != "abc" || r.U16("b") != 7 || r.U32("c") != 8 || r.U64("d") != 9 || len(r.LP("e")) != 0 || r.Finish() != nil {
		t.Fatal("round trip")
	}
	r = NewReader(b)
	r.LPFixed("a", 4)
	if err := r.Err(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "read a:") {
		t.Fatalf("LPFixed: %v", err)
	}
	if r.U64("x") != 0 || !errors.Is(r.Finish(), ErrMalformed) {
		t.Fatal("error does not stick")
	}
	r = NewReader([]byte{0, 5, 1})
	if r.LP("x") != nil || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatal("short lp")
	}
	r = NewReader([]byte{1})
	if !errors.Is(r.Finish(), ErrTrailingData) {
		t.Fatal("trailing")
	}
	r = NewReader([]byte{0, 0, 0, 3, 1, 2})
	if r.Count("n", 1) != 0 || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatal("Count bound")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AppendLP of 65536 bytes did not panic")
		}
	}()
	AppendLP(nil, make([]byte, MaxLP+1))
}

func TestNames(t *testing.T) {
	if n, err := NormalizeName("cafe\u0301"); err != nil || n != "caf\u00e9" {
		t.Fatalf("NormalizeName = %q, %v", n, err)
	}
	for _, bad := range []string{"", "\xff", strings.Repeat("a", MaxNameLen+1)} {
		if _, err := NormalizeName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := CheckName("cafe\u0301"); !errors.Is(err, ErrBadName) {
		t.Error("CheckName accepted NFD")
	}
	if err := CheckName(strings.Repeat("a", MaxNameLen)); err != nil {
		t.Error(err)
	}
}

func flipped(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}
