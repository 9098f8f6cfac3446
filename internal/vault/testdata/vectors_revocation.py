#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent recomputation of vectors_revocation.json (crypto.md §2.8-§2.9, §6.5).

Written from crypto.md alone, with the Python `cryptography` package (OpenSSL) for HKDF, HMAC,
X25519 and Ed25519; it shares no code with the Go implementation. Run from this directory:

    python3 vectors_revocation.py      # prints "N/N match" and exits 0, or names what differs
"""
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def lp(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


def u8(v):
    return struct.pack(">B", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def derive(key, label, ctx=b""):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=lp(label) + ctx).derive(key)


def main():
    v = json.load(open("vectors.json"))
    r = json.load(open("vectors_revocation.json"))
    i, ri = v["inputs"], r["inputs"]
    h = bytes.fromhex
    aid, app_id, env_id = h(i["account_id"]), h(i["app_id"]), h(i["env_id"])
    mk = h(i["machine_key"])
    machine_id = derive(mk, "ov/v1/machine-id")[:16]
    x_pub = X25519PrivateKey.from_private_bytes(derive(mk, "ov/v1/machine-x25519")).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sk = Ed25519PrivateKey.from_private_bytes(h(i["account_sign_seed"]))
    g = i["grant"]
    scope = lp(app_id) + lp(i["app_name"]) + lp(env_id) + lp(i["env_name"]) + u64(g["seq_min"])

    def grant(flags):
        return (lp("ov/v2/machine-grant") + lp(aid) + lp(machine_id) + lp(x_pub) + u64(ri["not_before"]) + u64(ri["not_after"])
                + u8(flags) + u64(ri["revocations_seq"]) + u32(1) + scope)

    scoped, wide = grant(0), grant(1)
    entries = sorted([(h(ri["other_machine_id"]), ri["revoked_at_other"]), (machine_id, ri["revoked_at_machine"])])
    revs = lp("ov/v1/machine-revocations") + lp(aid) + u64(ri["revocation_list_seq"]) + u64(ri["revocation_list_issued_at"]) + u32(len(entries))
    for mid, at in entries:
        revs += lp(mid) + u64(at)
    ghash = hashlib.sha256(scoped).digest()
    access = (lp("ov/v1/env-access") + lp(aid) + lp(app_id) + lp(env_id) + u32(i["env_epoch"]) + lp(h(v["env_key"]["ek_id"]))
              + u64(ri["access_version"]) + u64(ri["revocation_list_seq"]) + u64(ri["access_issued_at"]) + u32(1) + lp(machine_id) + lp(ghash))
    cache_key = derive(mk, "ov/v1/machine-cache", lp(machine_id))
    msg = lp("ov/v1/machine-cache") + lp(machine_id) + lp(i["app_name"]) + lp(i["env_name"]) + ri["cache_entry_utf8"].encode()
    got = {
        "grant_v2_scoped.bytes": scoped, "grant_v2_scoped.signature": sk.sign(scoped),
        "grant_v2_account_wide.bytes": wide, "grant_v2_account_wide.signature": sk.sign(wide),
        "grant_v2_scoped_sha256": ghash,
        "revocations.bytes": revs, "revocations.signature": sk.sign(revs),
        "env_access.bytes": access, "env_access.signature": sk.sign(access),
        "cache.key": cache_key, "cache.msg": msg, "cache.mac": hmac.new(cache_key, msg, hashlib.sha256).digest(),
    }
    bad = 0
    for k, val in got.items():
        want = r
        for part in k.split("."):
            want = want[part]
        if val.hex() != want:
            bad += 1
            print("MISMATCH", k, "\n  computed", val.hex(), "\n  file    ", want)
    print("%d/%d match" % (len(got) - bad, len(got)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
