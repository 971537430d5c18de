"""Outgoing mail: the `console` backend (log it) or `smtp`, always sent off the request path.

`send()` only queues the mail; a small pool of threads delivers it, so a slow or dead mail
server never slows or fails an HTTP answer. A mail that cannot be sent is logged with its
recipient, subject and the error's type, never its body: bodies carry single-use tokens.

The console backend is the delivery mechanism in development, so there it logs the body
(links and all) at INFO. In production it logs only recipient and subject, with a warning:
a token in a production log would outlive its mail.
"""

import logging
import smtplib
import ssl
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from app.core.config import Environment, Settings, get_settings

logger = logging.getLogger(__name__)

MAIL_WORKERS = 2
MAX_PENDING = 1000  # beyond this, new mails are dropped (and logged) rather than piling up


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class Transport:
    """The settings a delivery needs, taken when the mail is queued."""

    backend: str
    host: str | None
    port: int
    user: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool
    timeout: float
    from_address: str
    from_name: str
    log_body: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> "Transport":
        return cls(
            backend=settings.EMAIL_BACKEND,
            host=settings.SMTP_HOST,
            port=settings.SMTP_PORT,
            user=settings.SMTP_USER,
            password=settings.SMTP_PASSWORD,
            starttls=settings.SMTP_TLS and not settings.SMTP_SSL,
            implicit_tls=settings.SMTP_SSL,
            timeout=settings.SMTP_TIMEOUT,
            from_address=settings.EMAILS_FROM_EMAIL,
            from_name=settings.brand_name,
            log_body=settings.ENVIRONMENT is not Environment.PRODUCTION,
        )


def compose(mail: Mail, transport: Transport) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = formataddr((transport.from_name, transport.from_address))
    message["To"] = mail.to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=transport.from_address.rpartition("@")[2] or None)
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


def _send_smtp(mail: Mail, transport: Transport) -> None:
    if not transport.host:
        raise smtplib.SMTPException("SMTP_HOST is not set")
    message = compose(mail, transport)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if transport.implicit_tls:
        client = smtplib.SMTP_SSL(
            transport.host, transport.port, timeout=transport.timeout, context=context
        )
    else:
        client = smtplib.SMTP(transport.host, transport.port, timeout=transport.timeout)
    with client:
        if transport.starttls:
            client.starttls(context=context)
        if transport.user:
            client.login(transport.user, transport.password or "")
        client.send_message(message)


def _log_console(mail: Mail, transport: Transport) -> None:
    if transport.log_body:
        logger.info("mail (console backend) to %s: %s\n%s", mail.to, mail.subject, mail.text)
    else:
        logger.warning(
            "mail (console backend) to %s: %s; body withheld in production,"
            " set EMAIL_BACKEND=smtp to deliver it",
            mail.to,
            mail.subject,
        )


def _describe(error: BaseException) -> str:
    """The error's type and SMTP code: never its text, which may quote the message."""
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__} {code}" if code else type(error).__name__


def deliver(mail: Mail, transport: Transport) -> bool:
    """Deliver one mail now (in the calling thread). Never raises; False when it failed."""
    try:
        if transport.backend == "smtp":
            _send_smtp(mail, transport)
            logger.info("mail sent to %s: %s", mail.to, mail.subject)
        else:
            _log_console(mail, transport)
    except Exception as error:  # a worker must never die, nor log the body
        logger.error("mail to %s not sent (%s): %s", mail.to, mail.subject, _describe(error))
        return False
    return True


class Outbox:
    """A bounded pool of delivery threads, and a way to wait until it is idle."""

    def __init__(self, workers: int = MAIL_WORKERS, max_pending: int = MAX_PENDING) -> None:
        self._workers = workers
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: set[Future[bool]] = set()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, mail: Mail, transport: Transport) -> bool:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                logger.error("mail to %s dropped (%s): outbox full", mail.to, mail.subject)
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="mail"
                )
            future = self._executor.submit(deliver, mail, transport)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return True

    def _forget(self, future: Future[bool]) -> None:
        with self._lock:
            self._pending.discard(future)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every mail queued so far is delivered or failed; False on timeout."""
        with self._lock:
            pending = set(self._pending)
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done


outbox = Outbox()


def send(mail: Mail) -> bool:
    """Queue a mail for delivery with the current settings; returns at once."""
    return outbox.submit(mail, Transport.from_settings(get_settings()))


def flush(timeout: float | None = 30) -> bool:
    """Wait for the queued mails (tests; a graceful shutdown)."""
    return outbox.flush(timeout)
