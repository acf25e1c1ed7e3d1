# Independent reference values of peer protocol version 3 (run: python3 v3_vectors.py;
# needs the `cryptography` package, 48.0 was used). key_schedule_test.ts, sas_test.ts and
# secure_channel_test.ts check the TypeScript code against its output.
import struct
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

def sha256(b):
    h = hashes.Hash(hashes.SHA256()); h.update(b); return h.finalize()
def hkdf(ikm, salt, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info.encode()).derive(ikm)
def u32(n): return struct.pack(">I", n)

hi, hr = b"initiator hello", b"responder hello"
th = sha256(b"chat-peer/3 transcript" + u32(len(hi)) + hi + u32(len(hr)) + hr)
print("th", th.hex())
shared = bytes(range(32)); psk = b"psk"
ikm = shared + psk
out = {}
for name, label, n in [("initiatorToResponder","key i2r",32),("responderToInitiator","key r2i",32),
    ("ivInitiatorToResponder","iv i2r",12),("ivResponderToInitiator","iv r2i",12),
    ("confirmInitiator","confirm initiator",32),("confirmResponder","confirm responder",32)]:
    out[name] = hkdf(ikm, th, "chat-peer/3 " + label, n)
    print(name, out[name].hex())
m = hmac.HMAC(out["confirmInitiator"], hashes.SHA256()); m.update(th)
print("macInitiator", m.finalize().hex())
sas = hkdf(th, b"", "chat-peer/3 sas", 16)  # empty salt = HashLen zeros, as WebCrypto
v = int.from_bytes(sas, "big") % 10**25
d = str(v).zfill(25); print("sas", " ".join(d[i:i+5] for i in range(0,25,5)))
# Records: key i2r / iv i2r from above, records 0 and 1 of "attack at dawn".
key, iv = out["initiatorToResponder"], out["ivInitiatorToResponder"]
for n, text in [(0, b"attack at dawn"), (1, b"")]:
    nonce = bytes(a ^ b for a, b in zip(iv, b"\0\0\0\0" + struct.pack(">Q", n)))
    prefix = u32(len(text) + 16)
    print("record", n, (prefix + ChaCha20Poly1305(key).encrypt(nonce, text, prefix)).hex())
