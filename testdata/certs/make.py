#!/usr/bin/env python3
"""Test certificates for the TLS scenarios, and the scenario files that embed them.

    python3 testdata/certs/make.py certs      # (re)generate testdata/certs/*.pem (new keys)
    python3 testdata/certs/make.py scenarios  # expand testdata/scenarios/**/*.yaml.in into *.yaml

Certificates: ECDSA P-256, valid 2020-2120 (one expired on purpose), issued by a test CA
(`ca.pem`), except `selfsigned-*`. A scenario template names a Secret with a line

    - {{secret NAMESPACE/NAME CERT [tls|ca|cacert|istio|opaque-tls|empty|garbage|mismatch]}}

which becomes a `v1` Secret object holding CERT's certificate and key (base64 `data`), as
`kubernetes.io/tls` (`tls`, the default), a CA bundle (`ca`: `ca.crt` only; `cacert`: `cacert`
only), Istio's generic keys (`istio`: `cert`, `key`, `cacert`), or a broken one (`empty`: no
data; `garbage`: tls.crt not PEM; `mismatch`: CERT's certificate with another key), and
`{{urlpem CERT}}` becomes CERT's certificate URL-encoded as Envoy and nginx send it upstream.
Needs python3 with `cryptography` (only to regenerate; the outputs are committed).
"""
import base64
import datetime
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# name -> (subject CN, DNS SANs, issuer ("ca" or "self"), validity years offset)
CERTS = {
    "ca": ("Portico Test CA", [], "self", None),
    "shop": ("shop.example.com", ["shop.example.com"], "ca", None),
    "api": ("api.example.com", ["api.example.com"], "ca", None),
    "wildcard": ("*.example.com", ["*.example.com"], "ca", None),
    "multi": ("a.example.org", ["a.example.org", "b.example.org"], "ca", None),
    "default": ("default.portico.test", ["*.portico.test"], "ca", None),
    "other": ("other.test", ["other.test"], "ca", None),
    "cn-only": ("cn.example.net", [], "ca", None),
    "expired": ("old.example.com", ["old.example.com"], "ca", "expired"),
    "client": ("client.example.com", ["client.example.com"], "ca", "client"),
    "selfsigned-client": ("rogue.example.com", ["rogue.example.com"], "self", "client"),
    "bookinfo": ("bookinfo.example.com", ["bookinfo.example.com", "*.bookinfo.example.com"], "ca", None),
    "gw": ("gw.example.com", ["gw.example.com", "*.gw.example.com"], "ca", None),
}


def make_certs():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    keys, certs = {}, {}
    for name, (cn, sans, issuer, kind) in CERTS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portico Tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        if kind == "expired":
            start, end = datetime.datetime(2019, 1, 1), datetime.datetime(2020, 1, 1)
        else:
            start, end = datetime.datetime(2020, 1, 1), datetime.datetime(2120, 1, 1)
        if issuer == "self":
            issuer_name, issuer_key = subject, key
        else:
            issuer_name, issuer_key = certs["ca"].subject, keys["ca"]
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end))
        if name == "ca":
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
        else:
            b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            usage = ExtendedKeyUsageOID.CLIENT_AUTH if kind == "client" else ExtendedKeyUsageOID.SERVER_AUTH
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
        cert = b.sign(issuer_key, hashes.SHA256())
        keys[name], certs[name] = key, cert
        (HERE / f"{name}.crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (HERE / f"{name}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    print(f"wrote {len(CERTS)} certificates to {HERE}")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(ref, cert, kind="tls"):
    ns, name = ref.split("/")
    crt = (HERE / f"{cert}.crt.pem").read_text()
    key = (HERE / f"{cert}.key.pem").read_text()
    ca = (HERE / "ca.crt.pem").read_text()
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
           "type": "kubernetes.io/tls"}
    if kind == "tls":
        obj["data"] = {"tls.crt": b64(crt), "tls.key": b64(key)}
    elif kind == "ca":
        obj["type"] = "Opaque"
        obj["data"] = {"ca.crt": b64(ca)}
    elif kind == "cacert":
        obj["type"] = "Opaque"
        obj["data"] = {"cacert": b64(ca)}
    elif kind == "istio":
        obj["type"] = "Opaque"
        obj["data"] = {"cert": b64(crt), "key": b64(key), "cacert": b64(ca)}
    elif kind == "tls-ca":
        obj["data"] = {"tls.crt": b64(crt), "tls.key": b64(key), "ca.crt": b64(ca)}
    elif kind == "empty":
        obj["data"] = {}
    elif kind == "garbage":
        obj["data"] = {"tls.crt": b64("not a certificate"), "tls.key": b64(key)}
    elif kind == "mismatch":
        other = (HERE / "other.key.pem").read_text()
        obj["data"] = {"tls.crt": b64(crt), "tls.key": b64(other)}
    else:
        raise SystemExit(f"unknown secret kind {kind}")
    return json.dumps(obj, separators=(", ", ": "))


MARKER = re.compile(r"\{\{secret ([^ }]+) ([^ }]+)(?: ([^ }]+))?\}\}")
URLPEM = re.compile(r"\{\{urlpem ([^ }]+)\}\}")


def urlpem(cert):
    """The certificate as Envoy's %DOWNSTREAM_PEER_CERT% (and nginx's $ssl_client_escaped_cert)
    sends it: PEM with newlines, spaces, +, / and = percent-encoded."""
    pem = (HERE / f"{cert}.crt.pem").read_text()
    for a, b in (("\n", "%0A"), (" ", "%20"), ("+", "%2B"), ("/", "%2F"), ("=", "%3D")):
        pem = pem.replace(a, b)
    return pem


def expand():
    n = 0
    for src in sorted(ROOT.glob("testdata/scenarios/**/*.yaml.in")):
        text = src.read_text()
        out = MARKER.sub(lambda m: secret(m.group(1), m.group(2), m.group(3) or "tls"), text)
        out = URLPEM.sub(lambda m: urlpem(m.group(1)), out)
        dst = src.with_suffix("")
        dst.write_text("# Generated from " + src.name + " by testdata/certs/make.py scenarios: edit that file.\n" + out)
        n += 1
    print(f"expanded {n} scenario templates")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "certs":
        make_certs()
    elif what == "scenarios":
        expand()
    else:
        raise SystemExit(__doc__)
