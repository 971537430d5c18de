"""Outgoing mail: SMTP to a real (local) server, the console backend, failures that only log."""

import logging
import time
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from app.core import mail
from app.core.config import Environment, Settings
from app.core.mail import Mail, Outbox, Transport
from tests.utils.mailbox import Mailbox, html_of, smtp_server, text_of
from tests.utils.server import free_port

SECRET_LINK = "http://localhost:3000/reset-password?token=never-log-me-0123456789"


def a_mail(to: str = "ada@example.com") -> Mail:
    return Mail(
        to=to,
        subject="Hello",
        text=f"Open {SECRET_LINK}\n",
        html=f'<p><a href="{SECRET_LINK}">Open</a></p>',
    )


def test_smtp_delivers_plain_text_and_html(
    mailbox: Mailbox, settings: Callable[..., Settings]
) -> None:
    settings(EMAILS_FROM_EMAIL="accounts@example.org", PROJECT_NAME="Acme")
    assert mail.send(a_mail())
    [message] = mailbox.wait()
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Acme <accounts@example.org>"
    assert message["Subject"] == "Hello"
    assert message["Message-ID"] and message["Date"]
    assert SECRET_LINK in text_of(message)
    assert f'href="{SECRET_LINK}"' in html_of(message)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_logs_in_when_a_user_is_set(settings: Callable[..., Settings]) -> None:
    with smtp_server(require_auth=True) as server:
        settings(
            EMAIL_BACKEND="smtp",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=server.port,
            SMTP_TLS=False,
            SMTP_USER="mailer",
            SMTP_PASSWORD="smtp-password",
        )
        mail.send(a_mail())
        server.mailbox.wait()
        assert server.mailbox.logins == [("mailer", "smtp-password")]


def test_a_refused_mail_is_logged_without_its_body(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.mail")
    mailbox.reject = True
    mail.send(a_mail())
    assert mail.flush(5)
    assert mailbox.messages == []
    assert "mail to ada@example.com not sent (Hello): SMTPDataError 554" in caplog.text
    assert "never-log-me" not in caplog.text


def test_unreachable_server_is_logged_and_never_raises(
    settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.mail")
    settings(EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TLS=False)
    assert mail.send(a_mail())  # queued: the caller never sees the failure
    assert mail.flush(5)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "ada@example.com" in errors[0].getMessage()
    assert "ConnectionRefusedError" in errors[0].getMessage()
    assert "never-log-me" not in caplog.text


def test_send_returns_at_once_while_the_server_is_slow(mailbox: Mailbox) -> None:
    mailbox.gate.clear()  # the server holds every DATA until the gate opens
    started = time.monotonic()
    mail.send(a_mail())
    assert time.monotonic() - started < 0.5
    time.sleep(0.05)
    assert mailbox.messages == []
    mailbox.gate.set()
    assert len(mailbox.wait()) == 1


def test_a_full_outbox_drops_and_logs(mailbox: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    from app.core.config import get_settings

    outbox = Outbox(workers=1, max_pending=1)
    transport = Transport.from_settings(get_settings())
    mailbox.gate.clear()
    assert outbox.submit(a_mail("one@example.com"), transport)
    assert not outbox.submit(a_mail("two@example.com"), transport)
    assert "mail to two@example.com dropped (Hello): outbox full" in caplog.text
    mailbox.gate.set()
    assert outbox.flush(5)
    assert [m["To"] for m in mailbox.wait()] == ["one@example.com"]


def test_console_backend_logs_the_body_in_development(
    settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.mail")
    settings(EMAIL_BACKEND="console", ENVIRONMENT=Environment.DEVELOPMENT)
    mail.send(a_mail())
    assert mail.flush(5)
    [record] = [r for r in caplog.records if r.name == "app.core.mail"]
    assert record.levelno == logging.INFO
    assert "ada@example.com" in record.getMessage()
    assert SECRET_LINK in record.getMessage()


def test_console_backend_never_logs_the_body_in_production(
    settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="app.core.mail")
    settings(EMAIL_BACKEND="console", ENVIRONMENT=Environment.PRODUCTION)
    mail.send(a_mail())
    assert mail.flush(5)
    assert "ada@example.com" in caplog.text
    assert "body withheld" in caplog.text
    assert "never-log-me" not in caplog.text


def test_smtp_backend_needs_a_host() -> None:
    with pytest.raises(ValidationError, match="SMTP_HOST is required"):
        Settings(_env_file=None, EMAIL_BACKEND="smtp", SMTP_HOST=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("url", ["localhost:3000", "ftp://x.io", "https://x.io/?a=1"])
def test_frontend_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="FRONTEND_URL"):
        Settings(_env_file=None, FRONTEND_URL=url)  # type: ignore[call-arg]
