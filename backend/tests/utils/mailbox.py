"""A real SMTP server for the tests (aiosmtpd on a free local port) and what it received."""

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.core import mail
from tests.utils.server import free_port

LINK = re.compile(r"https?://\S+\?token=[A-Za-z0-9_\-]+")
WAIT_S = 5.0


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps every message; `gate` lets a test make the server slow."""

    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    reject: bool = False

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self.gate.wait, 2 * WAIT_S)
        if self.reject:
            return "554 5.7.1 Message rejected"
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"smtp-password")

    def clear(self) -> None:
        mail.flush(WAIT_S)
        self.messages.clear()
        self.logins.clear()
        self.gate.set()
        self.reject = False

    def wait(self, count: int = 1) -> list[EmailMessage]:
        """Wait (boundedly) until `count` messages arrived; return them all."""
        assert mail.flush(WAIT_S), "the mail outbox did not drain"
        deadline = time.monotonic() + WAIT_S
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.messages) >= count, f"{len(self.messages)} of {count} mails arrived"
        return list(self.messages)

    def last_to(self, address: str) -> EmailMessage:
        self.wait()
        for message in reversed(self.messages):
            if message["To"] == address:
                return message
        raise AssertionError(f"no mail to {address}")

    def token_for(self, address: str, path: str) -> str:
        """The token in the link (to `path`) of the newest mail to `address`."""
        return token_in(self.last_to(address), path)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def token_in(message: EmailMessage, path: str) -> str:
    links = [link for link in LINK.findall(text_of(message)) if urlsplit(link).path == path]
    assert len(links) == 1, links
    return parse_qs(urlsplit(links[0]).query)["token"][0]


@dataclass(frozen=True)
class SmtpServer:
    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server(*, require_auth: bool = False) -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if require_auth:
        kwargs = {
            "authenticator": mailbox.authenticate,
            "auth_require_tls": False,
            "auth_required": True,
        }
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(port=port, mailbox=mailbox)
    finally:
        mailbox.gate.set()
        controller.stop()
