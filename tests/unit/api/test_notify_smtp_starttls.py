"""Email channels upgrade to TLS (STARTTLS) before sending, against a real aiosmtpd server with a
certificate made here; a server that does not offer STARTTLS, or whose certificate is not trusted, gets
nothing and the error says why."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.notify import smtp
from livemetrics.settings import Settings
from tests.support.services import free_port


def _self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "livemetrics test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_pem), str(key_pem)


class Handler:
    """Keeps each accepted message with whether its session was encrypted at the time."""

    def __init__(self) -> None:
        self.accepted: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.accepted.append((session.ssl is not None, envelope.content))
        return "250 OK"


@pytest.fixture
def server(request):
    """A started aiosmtpd server: ``tls`` (cert, key) offers STARTTLS and requires it before MAIL."""
    started = []

    def start(tls: tuple[str, str] | None) -> tuple[Handler, int]:
        handler, port = Handler(), free_port()
        kw = {}
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            kw = {"tls_context": ctx, "require_starttls": True}
        c = Controller(handler, hostname="127.0.0.1", port=port, **kw)
        c.start()
        started.append(c)
        return handler, port

    yield start
    for c in started:
        c.stop()


def _settings(port: int, **kw) -> Settings:
    return Settings(dev_mode=True, smtp_host="127.0.0.1", smtp_port=port, notify_timeout_s=5.0, **kw)


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alerts@livemetrics.test", "ops@shop.example", "Payment failed"
    msg.set_content("order o-1: card_declined")
    return msg


def test_the_connection_is_upgraded_before_the_message_is_sent(server, tmp_path):
    cert, key = _self_signed(tmp_path)
    handler, port = server((cert, key))
    assert smtp.send(_settings(port, smtp_ca_file=cert), _message()) is None
    [(encrypted, content)] = handler.accepted
    assert encrypted and b"card_declined" in content


def test_a_server_without_starttls_gets_nothing_and_the_error_says_so(server):
    handler, port = server(None)
    error = smtp.send(_settings(port), _message())
    assert error is not None and "does not offer STARTTLS" in error and "LIVEMETRICS_SMTP_STARTTLS" in error
    assert handler.accepted == []
    # Turned off on purpose (a trusted network): the same server accepts it in plain text.
    assert smtp.send(_settings(port, smtp_starttls=False), _message()) is None
    assert [enc for enc, _ in handler.accepted] == [False]


def test_an_untrusted_certificate_stops_the_upgrade_with_a_clear_error(server, tmp_path):
    cert, key = _self_signed(tmp_path)
    handler, port = server((cert, key))
    error = smtp.send(_settings(port), _message())  # the system's CAs do not know this certificate
    assert error is not None and "STARTTLS with the SMTP server" in error and "CERTIFICATE_VERIFY_FAILED" in error
    assert "LIVEMETRICS_SMTP_CA_FILE" in error and handler.accepted == []
