"""`manage resource|role|org|user roles` (AUTHZ.md, "CLI"), run as installed."""

from pathlib import Path

from fastapi.testclient import TestClient

from app.models.user import User
from tests.test_authz import ORDERS
from tests.test_cli import manage, refused
from tests.utils import api


def test_resources_roles_and_organizations_from_the_command_line(
    client: TestClient, admin_headers: dict[str, str], user: User, tmp_path: Path
) -> None:
    def ok(*args: str) -> str:
        result = manage(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    ok("resource", "create", ORDERS, "--name", "Orders", "--permission", "read=Read orders",
       "--permission", "write")  # fmt: skip
    assert "read write" in ok("resource", "list")
    ok("role", "create", "editor", "--permission", ORDERS, "read", "--permission", ORDERS, "write")
    assert f"{ORDERS} read {ORDERS} write" in ok("role", "list")
    assert "editor" in ok("user", "roles", user.email, "editor")
    assert "Created organization acme" in ok("org", "create", "Acme", "--slug", "acme")
    assert "acme: editor" in ok("org", "add-member", "acme", user.email, "--role", "editor")
    assert user.email in ok("org", "members", "acme")
    assert "acme" in ok("org", "list")

    held = client.get(
        api(f"/users/{user.id}/permissions"),
        params={"resource": ORDERS, "organization": "acme"},
        headers=admin_headers,
    )
    assert held.json() == {"permissions": ["read", "write"]}


def test_bad_input_is_one_line(user: User, tmp_path: Path) -> None:
    def no(*args: str) -> str:
        return refused(manage(*args, cwd=tmp_path))

    assert "identifier" in no("resource", "create", "not a uri", "--name", "x")
    assert "Unknown resource" in no("role", "create", "r", "--permission", ORDERS, "read")
    assert "--permission IDENTIFIER PERMISSION" in no("role", "create", "r", "--permission", ORDERS)
    assert "no role named ghost" in no("user", "roles", user.email, "ghost")
    assert "no user" in no("user", "roles", "nobody@example.com")
    assert "Organization not found" in no("org", "members", "nope")
    assert "slug" in no("org", "create", "x", "--slug", "Bad Slug")
