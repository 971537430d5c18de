"""Recovery mails have two budgets: per client address over all emails
(RATE_LIMIT_PASSWORD_RECOVERY_IP) and per email (RATE_LIMIT_PASSWORD_RECOVERY)."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from app.core import mail
from app.main import app
from app.models.user import User
from tests.utils import api, random_email
from tests.utils.mailbox import Mailbox, token_in

ADDRESSES = 12


def recover(client: TestClient, email: str) -> tuple[int, str, str | None]:
    response = client.post(api("/auth/password-recovery"), json={"email": email})
    return response.status_code, response.text, response.headers.get("retry-after")


def from_address(ip: str) -> TestClient:
    """A client whose requests come from `ip` (the app is already started by `client`)."""
    return TestClient(app, client=(ip, 40000))


def test_one_address_mails_at_most_ten_addresses_an_hour(
    client: TestClient, mailbox: Mailbox, user_factory: Callable[..., User]
) -> None:
    people = [user_factory() for _ in range(ADDRESSES)]

    answers = [recover(client, person.email) for person in people]

    assert [status for status, _, _ in answers] == [202] * 10 + [429] * 2
    for _, _, retry_after in answers[10:]:
        assert retry_after is not None and int(retry_after) > 0
    delivered = mailbox.wait(10)
    assert mail.flush(5)
    assert len(mailbox.messages) == 10
    assert sorted(m["To"] for m in delivered) == sorted(p.email for p in people[:10])
    # another address still has its own budget
    assert recover(from_address("198.51.100.20"), people[11].email)[0] == 202


def test_the_address_budget_answers_alike_for_known_and_unknown_emails(
    client: TestClient, mailbox: Mailbox, user_factory: Callable[..., User]
) -> None:
    emails = [user_factory().email if n % 2 else random_email() for n in range(ADDRESSES)]

    answers = [recover(client, email) for email in emails]

    assert [status for status, _, _ in answers] == [202] * 10 + [429] * 2
    unknown_refused, known_refused = answers[10], answers[11]
    assert unknown_refused[:2] == known_refused[:2]  # same status and body
    assert {answers[0][1], answers[1][1]} == {answers[0][1]}  # 202s alike too
    mailbox.wait(5)
    assert mail.flush(5)
    assert len(mailbox.messages) == 5  # the five known addresses among the first ten


def test_the_per_email_limit_stays_and_what_it_counted_reached_the_owner(
    client: TestClient, mailbox: Mailbox, user: User
) -> None:
    """A third party spending the owner's three requests an hour gets the owner 429 from
    anywhere, but every counted request mailed the owner a working link."""
    stranger = from_address("203.0.113.66")
    assert [recover(stranger, user.email)[0] for _ in range(3)] == [202] * 3
    assert recover(stranger, user.email)[0] == 429

    owner = from_address("198.51.100.1")
    assert recover(owner, user.email)[0] == 429  # per email, whoever asks

    links = mailbox.wait(3)
    assert all(message["To"] == user.email for message in links)
    token = token_in(links[-1], "/account/reset-password")
    reset = owner.post(
        api("/auth/reset-password"), json={"token": token, "new_password": "owner-new-password"}
    )
    assert reset.status_code == 204
