"""A real SMTP server for email tests (aiosmtpd): it accepts (``ok``) or refuses (``refuse``: 550 on DATA)
what it is sent, and keeps each accepted message."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from operations.ports import free_port


class SmtpServer:
    def __init__(self):
        self.mode = "ok"
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.mode == "refuse":
            self.refused += 1
            return "550 5.7.1 relaying denied for this sender"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
