"""Sending one email through the SMTP server of the settings (blocking: run it in a thread).

With ``smtp_starttls`` (the default) the connection is upgraded with STARTTLS before logging in or
sending, the server's certificate checked against the system's CAs or ``smtp_ca_file``; a server that
does not offer STARTTLS, or whose certificate does not check out, gets nothing (no plain-text fallback)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from livemetrics.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file or None)


def send(settings: Settings, msg: EmailMessage) -> str | None:
    """None when the server accepted the message, else what went wrong (shown to the seller)."""
    s = settings
    where = f"{s.smtp_host}:{s.smtp_port}"
    try:
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.notify_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    return (
                        f"the SMTP server {where} does not offer STARTTLS, so nothing was sent in plain text "
                        "(use a server with STARTTLS, or LIVEMETRICS_SMTP_STARTTLS=false on a trusted network)"
                    )
                try:
                    smtp.starttls(context=tls_context(s))
                except smtplib.SMTPResponseException as exc:
                    why = exc.smtp_error.decode(errors="replace")[:200]
                    return f"the SMTP server {where} refused STARTTLS: {exc.smtp_code} {why}; nothing was sent"
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            refused = smtp.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        return f"the SMTP server refused: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')[:200]}"
    except smtplib.SMTPRecipientsRefused as exc:
        code, why = next(iter(exc.recipients.values()))
        return f"the SMTP server refused the address: {code} {why.decode(errors='replace')[:200]}"
    except smtplib.SMTPException as exc:
        return f"SMTP failed: {type(exc).__name__}: {str(exc)[:200]}"
    except ssl.SSLError as exc:  # before OSError, which it is: the certificate or the handshake
        return (
            f"STARTTLS with the SMTP server {where} failed: {exc} "
            "(a private CA: name its certificate in LIVEMETRICS_SMTP_CA_FILE)"
        )
    except OSError as exc:
        return f"could not reach the SMTP server {where}: {exc}"
    if refused:
        code, why = next(iter(refused.values()))
        return f"the SMTP server refused the address: {code} {why.decode(errors='replace')[:200]}"
    return None
