// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/envelope"
)

// vectors mirrors testdata/vectors.json, the known-answer vectors of
// docs/design/crypto.md §6. Expected values are never edited: if one
// disagrees, the code is wrong.
type vectors struct {
	AccountKeyWrap struct{ AAD, Wrapped string } `json:"account_key_wrap"`
	APIKey         struct {
		ServerVerifier string `json:"server_verifier"`
		Token          string
	} `json:"api_key"`
	EnvKey struct {
		AAD          string
		EKID         string `json:"ek_id"`
		SecretEncKey string `json:"secret_enc_key"`
		Wrapped      string
	} `json:"env_key"`
	Inputs struct {
		AccountID        string `json:"account_id"`
		AccountKey       string `json:"account_key"`
		AccountSecretKey string `json:"account_secret_key"`
		AccountSignSeed  string `json:"account_sign_seed"`
		AKVersion        uint32 `json:"ak_version"`
		APIKeyID         string `json:"api_key_id"`
		APIKeySecret     string `json:"api_key_secret"`
		AppID            string `json:"app_id"`
		AppName          string `json:"app_name"`
		Argon2Production struct {
			Len  uint32
			MKiB uint32 `json:"m_kib"`
			P, T uint32
		} `json:"argon2id_production"`
		Argon2Test struct {
			Len     uint32
			MKiB    uint32 `json:"m_kib"`
			P       uint8
			T       uint32
			Version string
		} `json:"argon2id_test"`
		EnvEpoch uint32 `json:"env_epoch"`
		EnvID    string `json:"env_id"`
		EnvKey   string `json:"env_key"`
		EnvName  string `json:"env_name"`
		Grant    struct {
			NotAfter  uint64 `json:"not_after"`
			NotBefore uint64 `json:"not_before"`
			SeqMin    uint64 `json:"seq_min"`
		}
		KEKSalt    string `json:"kek_salt"`
		MachineKey string `json:"machine_key"`
		EphSK      string `json:"machine_wrap_ephemeral_sk"`
		Manifest   struct {
			IssuedAt uint64 `json:"issued_at"`
			Seq      uint64
		}
		NonceAKWrap      string `json:"nonce_ak_wrap"`
		NonceEKWrap      string `json:"nonce_ek_wrap"`
		NonceMachineWrap string `json:"nonce_machine_wrap"`
		Password         string `json:"password_utf8"`
		Secret1, Secret2 vecSecretIn
	}
	KDF struct {
		PwKey          string `json:"argon2id_pw_key"`
		ParamsEncoding string `json:"kdf_params_encoding"`
		KEK            string
		KeyCheck       string `json:"key_check"`
		LoginAuth      string `json:"login_auth"`
		LoginVerifier  string `json:"login_verifier"`
		PRK            string `json:"prk_2skd"`
	}
	KDFUnicode struct {
		PwKey string `json:"argon2id_pw_key"`
		KEK   string
		NFC   string `json:"password_nfc_hex"`
		NFD   string `json:"password_nfd_hex"`
	} `json:"kdf_unicode"`
	Machine struct {
		AccountWrap     string `json:"account_wrap"`
		AccountWrapInfo string `json:"account_wrap_info"`
		AccountWrapNote string `json:"account_wrap_note"`
		EnvKeyWrap      string `json:"env_key_wrap"`
		GrantBytes      string `json:"grant_bytes"`
		GrantSignature  string `json:"grant_signature"`
		KeyFile         string `json:"key_file"`
		KeyFileLen      int    `json:"key_file_len"`
		MachineAuth     string `json:"machine_auth"`
		MachineID       string `json:"machine_id"`
		MachineVerifier string `json:"machine_verifier"`
		PinKey          string `json:"pin_key"`
		PinMAC          string `json:"pin_mac"`
		PinMsg          string `json:"pin_msg"`
		X25519Pub       string `json:"x25519_pub"`
		X25519SK        string `json:"x25519_sk"`
	}
	Manifest struct {
		SignPub   string `json:"account_sign_pub"`
		Bytes     string
		Signature string
	}
	Spec    string
	Secrets []struct {
		AAD, Name, Record string
		BlindID           string `json:"blind_id"`
		RecordSHA256      string `json:"record_sha256"`
	}
}

type vecSecretIn struct {
	Name    string
	Nonce   string
	Value   string `json:"value_utf8"`
	Version uint64
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	// Every key in the file must map to a field, so no vector can be skipped
	// silently by a typo in a tag.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v vectors
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func eqHex(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

// useTestKDF allows the vectors' m=64 KiB for one test and restores the
// previous setting afterwards (UseTestKDF itself is one-way).
func useTestKDF(t testing.TB) {
	t.Helper()
	prev := testKDF.Load()
	testKDF.Store(true)
	t.Cleanup(func() { testKDF.Store(prev) })
}

// fixture holds the vector inputs as typed keys.
type fixture struct {
	v         *vectors
	aid       []byte
	params    KDFParams
	ask       *AccountSecretKey
	ak        *AccountKey
	ek        *EnvKey
	sk        *SigningKey
	mk        *MachineKey
	scope     Scope
	ephSK     *ecdh.PrivateKey
	machineNo []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	v := loadVectors(t)
	in := v.Inputs
	f := &fixture{v: v, aid: unhex(t, in.AccountID)}
	f.params = KDFParams{Time: in.Argon2Test.T, MemoryKiB: in.Argon2Test.MKiB, Threads: in.Argon2Test.P, Salt: unhex(t, in.KEKSalt)}
	if in.Argon2Test.Len != KeyLen || in.Argon2Test.Version != "0x13" {
		t.Fatalf("unexpected argon2 test params %+v", in.Argon2Test)
	}
	var err error
	if f.ask, err = AccountSecretKeyFromBytes(unhex(t, in.AccountSecretKey)); err != nil {
		t.Fatal(err)
	}
	if f.ak, err = AccountKeyFromBytes(unhex(t, in.AccountKey)); err != nil {
		t.Fatal(err)
	}
	if f.ek, err = EnvKeyFromBytes(unhex(t, in.EnvKey)); err != nil {
		t.Fatal(err)
	}
	f.sk = &SigningKey{keyFrom(unhex(t, in.AccountSignSeed))}
	if f.mk, err = ParseMachineKeyFile(unhex(t, in.MachineKey)); err != nil {
		t.Fatal(err)
	}
	f.scope = Scope{AccountID: f.aid, AppID: unhex(t, in.AppID), EnvID: unhex(t, in.EnvID), Epoch: in.EnvEpoch, AppName: in.AppName, EnvName: in.EnvName}
	if f.ephSK, err = ecdh.X25519().NewPrivateKey(unhex(t, in.EphSK)); err != nil {
		t.Fatal(err)
	}
	f.machineNo = unhex(t, in.NonceMachineWrap)
	return f
}

// vectorsSHA256 is the digest of testdata/vectors.json as the design published
// it. The file is never edited; a change to it fails here, not silently.
const vectorsSHA256 = "97afa41a359be5ac886abbef8c02484399d64f7aa2c552f91a66238e68752f84"

func TestVectorsFileIsVerbatim(t *testing.T) {
	got, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != vectorsSHA256 {
		t.Fatalf("testdata/vectors.json has sha256 %x, not the published %s", sum, vectorsSHA256)
	}
}

func TestVectorsKDF(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	v := f.v
	eqHex(t, "KDFParams.Encode", f.params.Encode(), v.KDF.ParamsEncoding)
	pw := []byte(v.Inputs.Password)

	pwKey := argon2Key(pw, f.params)
	eqHex(t, "argon2id pw_key", pwKey.Bytes(), v.KDF.PwKey)
	prk := extract2SKD(&pwKey, f.ask)
	eqHex(t, "PRK", prk.Bytes(), v.KDF.PRK)

	pk, err := DerivePasswordKeys(pw, f.ask, f.aid, f.params)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "KEK", pk.kek.Bytes(), v.KDF.KEK)
	kc := pk.KeyCheck()
	eqHex(t, "key_check", kc[:], v.KDF.KeyCheck)
	eqHex(t, "login_auth", pk.LoginAuth().Bytes(), v.KDF.LoginAuth)
	lv := pk.LoginVerifier()
	eqHex(t, "login_verifier", lv[:], v.KDF.LoginVerifier)
	if err := pk.CheckKeyCheck(unhex(t, v.KDF.KeyCheck)); err != nil {
		t.Errorf("key check of the vector: %v", err)
	}

	// Production parameters in the vectors match the defaults.
	prod := v.Inputs.Argon2Production
	if prod.T != DefaultKDFTime || prod.MKiB != DefaultKDFMemoryKiB || prod.P != DefaultKDFThreads || prod.Len != KeyLen {
		t.Errorf("production params %+v differ from the defaults", prod)
	}
}

func TestVectorsKDFUnicode(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	u := f.v.KDFUnicode
	for _, form := range []string{u.NFC, u.NFD} {
		pw := unhex(t, form)
		pwKey := argon2Key(pw, f.params)
		eqHex(t, "pw_key("+form+")", pwKey.Bytes(), u.PwKey)
		pk, err := DerivePasswordKeys(pw, f.ask, f.aid, f.params)
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, "KEK("+form+")", pk.kek.Bytes(), u.KEK)
	}
}

func TestVectorsAccountKeyWrap(t *testing.T) {
	useTestKDF(t)
	f := newFixture(t)
	v := f.v
	eqHex(t, "AK wrap AAD", accountKeyAAD(f.aid, v.Inputs.AKVersion, f.params), v.AccountKeyWrap.AAD)
	pk, err := DerivePasswordKeys([]byte(v.Inputs.Password), f.ask, f.aid, f.params)
	if err != nil {
		t.Fatal(err)
	}
	w := sealKey(&pk.kek, unhex(t, v.Inputs.NonceAKWrap), &f.ak.Key, accountKeyAAD(f.aid, v.Inputs.AKVersion, f.params))
	eqHex(t, "wrapped AK", w, v.AccountKeyWrap.Wrapped)
	ak, err := pk.UnwrapAccountKey(unhex(t, v.KDF.KeyCheck), unhex(t, v.AccountKeyWrap.Wrapped), v.Inputs.AKVersion)
	if err != nil {
		t.Fatal(err)
	}
	if !ak.Equal(&f.ak.Key) {
		t.Error("unwrapped AK differs from the vector input")
	}
}

func TestVectorsEnvKey(t *testing.T) {
	f := newFixture(t)
	v := f.v
	aad, err := f.scope.envKeyAAD()
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "EK wrap AAD", aad, v.EnvKey.AAD)
	w, err := f.ak.wrapEnvKey(f.ek, f.scope, unhex(t, v.Inputs.NonceEKWrap))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "wrapped EK", w, v.EnvKey.Wrapped)
	ek, err := f.ak.UnwrapEnvKey(unhex(t, v.EnvKey.Wrapped), f.scope)
	if err != nil {
		t.Fatal(err)
	}
	if !ek.Equal(&f.ek.Key) {
		t.Error("unwrapped EK differs from the vector input")
	}
	c, err := NewEnvCipher(f.ek, f.scope)
	if err != nil {
		t.Fatal(err)
	}
	id := c.EKID()
	eqHex(t, "ek_id", id[:], v.EnvKey.EKID)
	eqHex(t, "secret_enc_key", c.enc.Bytes(), v.EnvKey.SecretEncKey)
}

func TestVectorsSecrets(t *testing.T) {
	f := newFixture(t)
	v := f.v
	c, err := NewEnvCipher(f.ek, f.scope)
	if err != nil {
		t.Fatal(err)
	}
	ins := []vecSecretIn{v.Inputs.Secret1, v.Inputs.Secret2}
	if len(v.Secrets) != len(ins) {
		t.Fatalf("%d secret outputs for %d inputs", len(v.Secrets), len(ins))
	}
	for i, in := range ins {
		out := v.Secrets[i]
		if out.Name != in.Name {
			t.Fatalf("secret %d: output %q for input %q", i, out.Name, in.Name)
		}
		eqHex(t, in.Name+" AAD", c.recordAAD(in.Name, in.Version), out.AAD)
		b, err := c.Blind(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, in.Name+" blind id", b[:], out.BlindID)
		rec, err := c.seal(in.Name, in.Version, []byte(in.Value), unhex(t, in.Nonce))
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, in.Name+" record", rec, out.Record)
		h := sha256.Sum256(rec)
		eqHex(t, in.Name+" record SHA-256", h[:], out.RecordSHA256)

		val, err := c.Open(in.Name, in.Version, unhex(t, out.Record))
		if err != nil || string(val) != in.Value {
			t.Errorf("open %s: %q, %v", in.Name, val, err)
		}
		name, val, err := c.OpenUnnamed(in.Version, unhex(t, out.Record))
		if err != nil || name != in.Name || string(val) != in.Value {
			t.Errorf("open unnamed %s: %q %q, %v", in.Name, name, val, err)
		}
	}
}

func TestVectorsManifest(t *testing.T) {
	f := newFixture(t)
	v := f.v
	eqHex(t, "account signing public key", f.sk.Public(), v.Manifest.SignPub)
	c, err := NewEnvCipher(f.ek, f.scope)
	if err != nil {
		t.Fatal(err)
	}
	ins := []vecSecretIn{v.Inputs.Secret2, v.Inputs.Secret1} // unsorted on purpose
	var entries []envelope.ManifestEntry
	for _, in := range ins {
		var rec []byte
		for _, s := range v.Secrets {
			if s.Name == in.Name {
				rec = unhex(t, s.Record)
			}
		}
		e, err := c.Entry(in.Name, in.Version, rec)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	m := c.Manifest(v.Inputs.Manifest.Seq, v.Inputs.Manifest.IssuedAt, entries)
	raw, sig, err := f.sk.SignManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "manifest bytes", raw, v.Manifest.Bytes)
	eqHex(t, "manifest signature", sig, v.Manifest.Signature)

	// The read path over the vector bytes.
	records := map[[envelope.BlindLen]byte][]byte{}
	for _, s := range v.Secrets {
		var b [envelope.BlindLen]byte
		copy(b[:], unhex(t, s.BlindID))
		records[b] = unhex(t, s.Record)
	}
	got, gm, err := ReadSecrets(&ReadRequest{
		ManifestCheck: ManifestCheck{PublicKey: unhex(t, v.Manifest.SignPub), AccountID: f.aid, AppID: f.scope.AppID, EnvID: f.scope.EnvID, HighWater: v.Inputs.Manifest.Seq},
		Manifest:      unhex(t, v.Manifest.Bytes),
		Signature:     unhex(t, v.Manifest.Signature),
		EnvKey: func(epoch uint32) (*EnvKey, error) {
			return EnvKeyFromBytes(unhex(t, v.Inputs.EnvKey))
		},
		Names:   []string{"STRIPE_KEY", "DATABASE_URL"},
		Records: records,
	})
	if err != nil {
		t.Fatal(err)
	}
	if gm.Seq != v.Inputs.Manifest.Seq || len(got) != 2 ||
		got[0].Name != "STRIPE_KEY" || string(got[0].Value) != v.Inputs.Secret2.Value || got[0].Version != v.Inputs.Secret2.Version ||
		got[1].Name != "DATABASE_URL" || string(got[1].Value) != v.Inputs.Secret1.Value || got[1].Version != v.Inputs.Secret1.Version {
		t.Errorf("read secrets: %+v", got)
	}
}

func TestVectorsMachine(t *testing.T) {
	f := newFixture(t)
	v := f.v
	m := v.Machine
	if m.KeyFileLen != MachineKeyFileLen || m.KeyFile != v.Inputs.MachineKey {
		t.Errorf("key file vector: %d bytes %s", m.KeyFileLen, m.KeyFile)
	}
	eqHex(t, "key file", f.mk.Bytes(), m.KeyFile)
	id := f.mk.ID()
	eqHex(t, "machine_id", id[:], m.MachineID)
	eqHex(t, "machine_auth", f.mk.Auth().Bytes(), m.MachineAuth)
	mv := f.mk.Verifier()
	eqHex(t, "machine verifier", mv[:], m.MachineVerifier)
	eqHex(t, "x25519 sk", f.mk.x25519().Bytes(), m.X25519SK)
	eqHex(t, "x25519 pub", f.mk.PublicKey(), m.X25519Pub)

	// Scoped EK wrap.
	w, err := wrapEnvKeyToMachine(f.ek, f.scope, id[:], f.mk.PublicKey(), f.ephSK, f.machineNo)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "machine EK wrap", w, m.EnvKeyWrap)
	ek, err := f.mk.UnwrapEnvKey(unhex(t, m.EnvKeyWrap), f.scope)
	if err != nil || !ek.Equal(&f.ek.Key) {
		t.Errorf("unwrap machine EK wrap: %v", err)
	}

	// Account-wide AK wrap.
	eqHex(t, "account wrap info", machineAccountInfo(f.aid, id[:], v.Inputs.AKVersion), m.AccountWrapInfo)
	w, err = wrapAccountKeyToMachine(f.ak, f.aid, v.Inputs.AKVersion, id[:], f.mk.PublicKey(), f.ephSK, f.machineNo)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "machine account wrap", w, m.AccountWrap)
	ak, err := f.mk.UnwrapAccountKey(unhex(t, m.AccountWrap), f.aid, v.Inputs.AKVersion)
	if err != nil || !ak.Equal(&f.ak.Key) {
		t.Errorf("unwrap machine account wrap: %v", err)
	}

	// Grant.
	g := &envelope.Grant{
		AccountID: f.aid, MachineID: id[:], MachinePub: f.mk.PublicKey(),
		NotBefore: v.Inputs.Grant.NotBefore, NotAfter: v.Inputs.Grant.NotAfter,
		Scopes: []envelope.GrantScope{{AppID: f.scope.AppID, AppName: f.scope.AppName, EnvID: f.scope.EnvID, EnvName: f.scope.EnvName, SeqMin: v.Inputs.Grant.SeqMin}},
	}
	raw, sig, err := f.sk.SignGrant(g)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "grant bytes", raw, m.GrantBytes)
	eqHex(t, "grant signature", sig, m.GrantSignature)
	now := time.Unix(int64(v.Inputs.Grant.NotBefore), 0)
	vg, err := f.mk.VerifyGrant(f.sk.Public(), unhex(t, m.GrantBytes), unhex(t, m.GrantSignature), f.aid, now)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := LookupScope(vg, "myapp", "production"); err != nil || s.SeqMin != v.Inputs.Grant.SeqMin {
		t.Errorf("look up scope: %+v, %v", s, err)
	}

	// Pin.
	pinKey := f.mk.pinKey(f.aid, id[:])
	eqHex(t, "pin_key", pinKey.Bytes(), m.PinKey)
	eqHex(t, "pin_msg", pinMsg(f.aid, id[:], f.sk.Public()), m.PinMsg)
	mac, err := f.mk.PinMAC(f.aid, f.sk.Public())
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "pin_mac", mac[:], m.PinMAC)
	if err := f.mk.VerifyPin(f.aid, unhex(t, v.Manifest.SignPub), unhex(t, m.PinMAC)); err != nil {
		t.Error(err)
	}
}

func TestVectorsTokens(t *testing.T) {
	v := loadVectors(t)
	var id [envelope.APIKeyIDLen]byte
	var secret [envelope.SecretLen]byte
	copy(id[:], unhex(t, v.Inputs.APIKeyID))
	copy(secret[:], unhex(t, v.Inputs.APIKeySecret))
	if tok := envelope.FormatAPIToken(id, &secret); string(tok) != v.APIKey.Token {
		t.Errorf("api token %s, want %s", tok, v.APIKey.Token)
	}
	ver := envelope.APIKeyVerifier(&secret)
	eqHex(t, "api key verifier", ver[:], v.APIKey.ServerVerifier)
}

// TestVectorsTables checks that crypto.md §6.2's output table (as kept in
// vectors_tables.md) agrees with vectors.json, so the two published forms
// cannot drift apart.
func TestVectorsTables(t *testing.T) {
	md, err := os.ReadFile("testdata/vectors_tables.md")
	if err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t)
	want := map[string]string{
		"kdf.argon2id_pw_key":         v.KDF.PwKey,
		"kdf.kdf_params_encoding":     v.KDF.ParamsEncoding,
		"kdf.kek":                     v.KDF.KEK,
		"kdf.key_check":               v.KDF.KeyCheck,
		"kdf.login_auth":              v.KDF.LoginAuth,
		"kdf.login_verifier":          v.KDF.LoginVerifier,
		"kdf.prk_2skd":                v.KDF.PRK,
		"kdf_unicode.argon2id_pw_key": v.KDFUnicode.PwKey,
		"kdf_unicode.kek":             v.KDFUnicode.KEK,
		"account_key_wrap.wrapped":    v.AccountKeyWrap.Wrapped,
		"env_key.wrapped":             v.EnvKey.Wrapped,
		"env_key.ek_id":               v.EnvKey.EKID,
		"manifest.bytes":              v.Manifest.Bytes,
		"manifest.signature":          v.Manifest.Signature,
		"machine.env_key_wrap":        v.Machine.EnvKeyWrap,
		"machine.account_wrap":        v.Machine.AccountWrap,
		"machine.grant_bytes":         v.Machine.GrantBytes,
		"machine.grant_signature":     v.Machine.GrantSignature,
		"machine.machine_verifier":    v.Machine.MachineVerifier,
		"machine.pin_mac":             v.Machine.PinMAC,
		"api_key.token":               v.APIKey.Token,
		"api_key.server_verifier":     v.APIKey.ServerVerifier,
	}
	for k, val := range want {
		row := "| `" + k + "` | `" + val + "` |"
		if !bytes.Contains(md, []byte(row)) {
			t.Errorf("vectors_tables.md lacks row %s", strconv.Quote(row))
		}
	}
}

// TestVectorsCryptoMD checks that every hex value and token in crypto.md §6.2
// (inputs and outputs) is a value of vectors.json, which the tests above
// reproduce byte for byte; so §6.2 is proven too.
func TestVectorsCryptoMD(t *testing.T) {
	md, err := os.ReadFile("../../docs/design/crypto.md")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(md, []byte("### 6.2"))
	end := bytes.Index(md, []byte("### 6.3"))
	if start < 0 || end < start {
		t.Fatal("crypto.md has no §6.2")
	}
	sec := md[start:end]
	js, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("`(ovd_[A-Za-z0-9_-]+|[0-9a-f]{16,})`")
	found := re.FindAllSubmatch(sec, -1)
	if len(found) < 40 {
		t.Fatalf("only %d values found in §6.2", len(found))
	}
	for _, m := range found {
		if !bytes.Contains(js, append(append([]byte{'"'}, m[1]...), '"')) {
			t.Errorf("crypto.md §6.2 value %s is not a vectors.json value", m[1])
		}
	}
}
