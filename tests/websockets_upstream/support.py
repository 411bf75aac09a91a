"""Shared pieces of the ported websockets tests: a real ``websockets`` server on
127.0.0.1, a test certificate (valid for localhost, 127.0.0.1 and "overridden", as
websockets' own test certificate), and websockets' ``MS`` time unit.

See LICENSE.websockets in this directory for where the scenarios come from.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Generator
from typing import Any

from websockets.asyncio.server import Server, ServerConnection

from drbfast.websockets import backoff

#: websockets' tests use 1 ms; 10 ms holds on a busy 2-vCPU machine.
MS = 0.01 * float(os.environ.get("WEBSOCKETS_TESTS_TIMEOUT_FACTOR", "1"))
HOST = "127.0.0.1"


def _make_certificate() -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drbfast websockets tests")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName("localhost"), x509.DNSName("overridden"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory = tempfile.mkdtemp(prefix="drbfast-ws-tests-")
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


_CERT, _KEY = _make_certificate()
SERVER_CONTEXT = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
SERVER_CONTEXT.load_cert_chain(_CERT, _KEY)
CLIENT_CONTEXT = ssl.create_default_context(cafile=_CERT)


async def handler(ws: ServerConnection) -> None:
    """``/no-op`` returns at once; anything else echoes until the client leaves."""
    if ws.request is not None and ws.request.path == "/no-op":
        return
    async for message in ws:
        await ws.send(message)


#: ``serve(*args)`` as in websockets' tests, on 127.0.0.1 only.
args: tuple[Any, ...] = (handler, HOST, 0)


def get_host_port(server: Server | Any) -> tuple[str, int]:
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


def get_uri(server: Server, secure: bool | None = None) -> str:
    if secure is None:
        secure = server.server._ssl_context is not None  # type: ignore[attr-defined]
    host, port = get_host_port(server)
    return f"{'wss' if secure else 'ws'}://{host}:{port}"


def short_backoff() -> Generator[float, None, None]:
    yield from backoff(MS, MS, 4 * MS, 2.0)
