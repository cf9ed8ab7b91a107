"""Sending one email through the SMTP server of the settings (blocking: run it in a thread)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from livemetrics.settings import Settings


def send(settings: Settings, msg: EmailMessage) -> str | None:
    """None when the server accepted the message, else what went wrong (shown to the seller)."""
    s = settings
    try:
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.notify_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
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
    except OSError as exc:
        return f"could not reach the SMTP server {s.smtp_host}:{s.smtp_port}: {exc}"
    if refused:
        code, why = next(iter(refused.values()))
        return f"the SMTP server refused the address: {code} {why.decode(errors='replace')[:200]}"
    return None
