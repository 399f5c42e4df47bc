"""Writes the seed corpus fuzz/corpus/client_hello/seed-*: the captured ClientHellos of
filters/core/src/tls/testdata and hand-built variants. Run from the repository root."""
import os, shutil, struct

SRC = "filters/core/src/tls/testdata"
OUT = "fuzz/corpus/client_hello"

def records(msg, sizes, version=b"\x03\x01"):
    out, i = b"", 0
    while msg:
        n = min(sizes[min(i, len(sizes) - 1)], len(msg), 1 << 14)
        out += b"\x16" + version + struct.pack(">H", n) + msg[:n]
        msg, i = msg[n:], i + 1
    return out

def unrecord(b):
    m = b""
    while len(b) >= 5:
        n = struct.unpack(">H", b[3:5])[0]
        m, b = m + b[5:5 + n], b[5 + n:]
    return m

def message(body):
    return b"\x01" + struct.pack(">I", len(body))[1:] + body

def vec8(b): return bytes([len(b)]) + b
def vec16(b): return struct.pack(">H", len(b)) + b
def ext(t, data): return struct.pack(">H", t) + vec16(data)
def sni(*entries): return ext(0, vec16(b"".join(bytes([t]) + vec16(n) for t, n in entries)))
def alpn(*names): return ext(16, vec16(b"".join(vec8(n) for n in names)))
def versions(*vs): return ext(43, vec8(b"".join(struct.pack(">H", v) for v in vs)))

def hello(exts, version=0x0303, suites=(0x1301, 0xc02f), extensions=True):
    b = struct.pack(">H", version) + bytes(range(32)) + vec8(b"\x55" * 32)
    b += vec16(b"".join(struct.pack(">H", s) for s in suites)) + vec8(b"\x00")
    if extensions:
        b += vec16(b"".join(exts))
    return message(b)

def write(name, data):
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)

os.makedirs(OUT, exist_ok=True)
for f in sorted(os.listdir(SRC)):
    if f.endswith(".bin"):
        shutil.copy(os.path.join(SRC, f), os.path.join(OUT, "seed-" + f))

tls13 = unrecord(open(os.path.join(SRC, "openssl-tls13-alpn.bin"), "rb").read())
py13 = unrecord(open(os.path.join(SRC, "python-tls13-alpn.bin"), "rb").read())
third = len(py13) // 3
write("one-byte-records.bin", records(tls13, [1]))
write("three-records.bin", records(py13, [third, third, 1 << 14]))
write("header-split.bin", records(py13, [1, 2, 3, 1 << 14]))
write("grease.bin", records(hello(
    [ext(0x0a0a, b""), sni((0, b"Shop.Example.COM.")), alpn(b"h2", b"http/1.1"),
     versions(0x7a7a, 0x0304, 0x0303), ext(0x1a1a, b"\x00")],
    suites=(0x2a2a, 0x1301, 0xc02f)), [1 << 14]))
write("sni-other-types.bin", records(hello([sni((7, b"opaque"), (0, b"first.example"), (0, b"second"))]), [1 << 14]))
write("tls10-no-extensions.bin", records(hello([], version=0x0301, extensions=False), [1 << 14]))
write("trailing-records.bin", records(tls13, [1 << 14], b"\x03\x03")
      + b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x02\xaa\xbb")
write("http.txt", b"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
write("sslv2.bin", bytes([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]))
write("too-large.bin", b"\x16\x03\x01\x40\x00\x01\x01\x00\x01")
