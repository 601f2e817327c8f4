"""TLS material for the virtual devices: one self-signed RSA identity per process.

A real device and host each own a key; the client does not verify the device
(CERT_NONE) and the device here does not ask for the host's certificate, so one
self-signed certificate can stand for the device, the host and the root. It goes into
the pair record usbmuxd hands out (HostCertificate/HostPrivateKey, used by the client
for its side of the handshake) and serves as the device's certificate on lockdown
session TLS and service TLS. Generating an RSA key costs ~0.1 s, so it is made once.
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Identity:
    cert_pem: bytes
    key_pem: bytes
    public_key_pem: bytes  # what lockdown reports as DevicePublicKey (PKCS#1, as iOS does)


@lru_cache(maxsize=1)
def identity() -> Identity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "benchfarm virtual device")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Identity(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        public_key_pem=key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
    )


@lru_cache(maxsize=1)
def server_context() -> ssl.SSLContext:
    """The device side of lockdown session TLS and service TLS."""
    ident = identity()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The client offers SECLEVEL=0 ciphers; the device accepts whatever it negotiates.
    ctx.set_ciphers("ALL:!aNULL:!eNULL:@SECLEVEL=0")
    ctx.verify_mode = ssl.CERT_NONE
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "device.pem"
        pem.write_bytes(ident.cert_pem + ident.key_pem)
        ctx.load_cert_chain(pem)
    return ctx
