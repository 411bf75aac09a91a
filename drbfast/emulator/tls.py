"""A self-signed certificate for ``--tls``, made at start with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

__all__ = ["make_self_signed", "server_context"]


def make_self_signed(directory: str) -> tuple[str, str]:
    """Write a fresh self-signed certificate for localhost/127.0.0.1; return (cert, key) paths."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("--tls without --certfile needs the 'cryptography' package: pip install 'drbfast[tls]'") from exc
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drbfast emulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "emulator-cert.pem")
    key_path = os.path.join(directory, "emulator-key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def server_context(certfile: str | None, keyfile: str | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The server's SSL context and a client context that trusts exactly its certificate."""
    if certfile is None:
        certfile, keyfile = make_self_signed(tempfile.mkdtemp(prefix="drbfast-emu-"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certfile, keyfile)
    client = ssl.create_default_context(cafile=certfile)
    return server, client
