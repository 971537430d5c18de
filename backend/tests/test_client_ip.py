"""The client IP (rate-limit keys, audit events) is the socket's peer; X-Forwarded-For is
believed only from proxies the operator names with --forwarded-allow-ips."""

import httpx
import pytest
from sqlmodel import Session, col, select

from app.models.audit import AuditEvent
from tests.utils import PASSWORD
from tests.utils.server import running_server


def _registered_from(db: Session, email_prefix: str) -> str | None:
    db.rollback()  # a fresh read of what the server wrote
    event = db.exec(
        select(AuditEvent)
        .where(col(AuditEvent.event) == "user.registered")
        .order_by(col(AuditEvent.id).desc())
    ).first()
    assert event is not None, email_prefix
    return event.ip


@pytest.mark.parametrize(
    ("serve_args", "expected_ip"),
    [((), "127.0.0.1"), (("--forwarded-allow-ips", "127.0.0.1"), "203.0.113.9")],
    ids=["untrusted-proxy-header-ignored", "trusted-proxy"],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    db: Session, serve_args: tuple[str, ...], expected_ip: str
) -> None:
    with running_server(serve_args=serve_args) as base:
        answer = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "proxied@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert answer.status_code == 201, answer.text
    assert _registered_from(db, "proxied") == expected_ip
