"""Tokens for the product's API resources and organizations (AUTHZ.md, "Tokens"): the client's
registration, RFC 8707 `resource`, `organization`, and the claims they put in tokens."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import Settings
from app.crud import sessions
from app.db import get_engine
from app.models.client import ClientCreated, OAuthClient
from app.models.user import User
from tests.test_authz import ORDERS, add_member, create_resource, create_role
from tests.test_cli import manage, refused
from tests.utils import PASSWORD, api, make_user
from tests.utils.oidc import (
    ISSUER,
    TOKEN,
    USERINFO,
    browser,
    exchange,
    form_fields,
    make_client,
    oauth_client,
    redirect_params,
    refresh_grant,
    sign_in,
    start,
    submit,
)

WEB_APP = {"name": "Shop", "redirect_uris": ["https://app.example.com/callback"]}


@pytest.fixture(autouse=True)
def issuer(settings: Callable[..., Settings]) -> None:
    settings(PUBLIC_URL=ISSUER, RATE_LIMIT_ENABLED=False)


def register(client: TestClient, headers: dict[str, str], **fields: Any) -> Any:
    return client.post(api("/clients"), json={**WEB_APP, **fields}, headers=headers)


# Registration


def test_a_client_is_registered_for_resources_and_an_organization_usage(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_resource(client, admin_headers)
    created = register(
        client, admin_headers, resources=[ORDERS, ORDERS], organization_usage="require"
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resources"] == [ORDERS] and body["organization_usage"] == "require"
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, body["client_id"])
        assert row is not None and row.resources == [ORDERS]
        assert row.organization_usage == "require"

    plain = register(client, admin_headers).json()
    assert plain["resources"] == [] and plain["organization_usage"] == "none"
    patched = client.patch(
        api(f"/clients/{plain['client_id']}"),
        json={"resources": [ORDERS], "organization_usage": "allow"},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["resources"] == [ORDERS]
    assert patched.json()["organization_usage"] == "allow"


def test_an_unknown_resource_or_usage_is_422_at_registration(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    unknown = register(client, admin_headers, resources=["https://nowhere.example.com"])
    assert unknown.status_code == 422
    assert "https://nowhere.example.com" in unknown.text
    for bad in ({"resources": ["not a uri"]}, {"resources": "x"}, {"organization_usage": "all"},
                {"resources": [None]}):  # fmt: skip
        assert register(client, admin_headers, **bad).status_code == 422, bad
    plain = register(client, admin_headers).json()
    patched = client.patch(
        api(f"/clients/{plain['client_id']}"),
        json={"resources": ["https://nowhere.example.com"]},
        headers=admin_headers,
    )
    assert patched.status_code == 422
    assert client.get(api("/clients"), headers=admin_headers).json()["total"] == 1


def test_manage_client_create_takes_resources_and_an_organization_usage(
    client: TestClient, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    create_resource(client, admin_headers)
    uri = WEB_APP["redirect_uris"][0]
    result = manage("client", "create", "Shop", "--redirect-uri", uri, "--resource", ORDERS,
                    "--organization-usage", "allow", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    client_id = result.stdout.split()[1]
    with Session(get_engine()) as session:
        row = session.get(OAuthClient, client_id)
        assert row is not None and row.resources == [ORDERS]
        assert row.organization_usage == "allow"
    line = refused(manage("client", "create", "Shop", "--redirect-uri", uri,
                          "--resource", "https://nowhere.example.com", cwd=tmp_path))  # fmt: skip
    assert "https://nowhere.example.com" in line
    usage = manage("client", "create", "Shop", "--organization-usage", "some", cwd=tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr  # click's usage error


# RFC 8707 resource


def verified(client: TestClient, token: str, audience: str) -> dict[str, Any]:
    """The claims of `token`, checked by PyJWT against the published JWKS."""
    jwks = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return pyjwt.decode(
        token, key.key, algorithms=["RS256", "ES256"], audience=audience, issuer=ISSUER
    )


def orders_setup(client: TestClient, admin_headers: dict[str, str], user: User) -> dict[str, Any]:
    """Orders with read, write and delete; the user holds read globally."""
    create_resource(client, admin_headers, ORDERS, "read", "write", "delete")
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    assigned = client.put(
        api(f"/users/{user.id}/roles"), json={"roles": [reader["id"]]}, headers=admin_headers
    )
    assert assigned.status_code == 200, assigned.text
    return reader


def authorized(
    client: TestClient, registered: ClientCreated, user: User, scope: str, **params: str
) -> dict[str, str]:
    """The redirect's parameters after a sign-in on the hosted page."""
    started = start(oauth_client(client, registered, scope=scope), **params)
    answer = redirect_params(sign_in(browser(client), started.url, user.email, PASSWORD))
    answer["verifier"] = started.verifier
    return answer


def test_a_token_for_a_resource_names_it_and_holds_only_the_permissions_held(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    orders_setup(client, admin_headers, user)
    registered = make_client(db, first_party=True, resources=[ORDERS])
    scope = "openid offline_access read write"
    answer = authorized(client, registered, user, scope, resource=ORDERS)
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    assert tokens["scope"] == "openid offline_access read"
    claims = verified(client, tokens["access_token"], ORDERS)
    assert claims["scope"] == "openid offline_access read" and claims["sub"] == str(user.id)
    id_claims = verified(client, tokens["id_token"], registered.client_id)
    assert id_claims["sub"] == str(user.id)
    # A token for a resource is for that resource alone (RFC 8707 §2): not for this service.
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(USERINFO, headers=bearer).status_code == 401
    assert client.get(api("/users/me"), headers=bearer).status_code == 401

    # A refresh recomputes from the roles as they are then; the resource stays.
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    client.put(api(f"/users/{user.id}/roles"), json={"roles": [writer["id"]]},
               headers=admin_headers)  # fmt: skip
    refreshed = refresh_grant(client, registered, tokens["refresh_token"]).json()
    assert refreshed["scope"] == "openid offline_access write"
    assert verified(client, refreshed["access_token"], ORDERS)["scope"] == refreshed["scope"]
    again = refresh_grant(client, registered, refreshed["refresh_token"], resource=ORDERS)
    assert again.status_code == 200, again.text

    # Introspection answers the resource as the audience.
    service = make_client(db, grant_types=["client_credentials"], redirect_uris=[])
    seen = client.post(
        "/oauth/introspect",
        data={"token": again.json()["access_token"]},
        auth=(service.client_id, str(service.client_secret)),
    ).json()
    assert (
        seen["active"] is True
        and seen["aud"] == ORDERS
        and seen["scope"] == "offline_access openid write"
    )


def test_without_a_resource_the_token_is_for_the_service_as_before(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    orders_setup(client, admin_headers, user)
    registered = make_client(db, first_party=True, resources=[ORDERS])
    answer = authorized(client, registered, user, "openid email")
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    assert verified(client, tokens["access_token"], ISSUER)["scope"] == "openid email"
    started = start(oauth_client(client, registered, scope="openid read"))
    assert redirect_params(browser(client).get(started.url))["error"] == "invalid_scope"


def test_an_unknown_or_unregistered_resource_is_invalid_target(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    orders_setup(client, admin_headers, user)
    other = "https://api.example.com/billing"
    create_resource(client, admin_headers, other, "pay")
    registered = make_client(db, first_party=True, resources=[ORDERS])
    oauth = oauth_client(client, registered, scope="openid read")
    b = browser(client)
    for resource in (other, "https://nowhere.example.com", "", "x" * 3000):
        started = start(oauth, resource=resource)
        answer = redirect_params(b.get(started.url))
        assert answer["error"] in ("invalid_target", "invalid_request"), (resource, answer)
        if len(resource) < 2048:
            assert answer["error"] == "invalid_target"
    twice = start(oauth, resource=ORDERS).url + "&resource=" + ORDERS
    assert redirect_params(b.get(twice))["error"] == "invalid_request"

    answer = authorized(client, registered, user, "openid offline_access read", resource=ORDERS)
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": registered.redirect_uris[0],
        "code_verifier": answer["verifier"],
    }
    auth = (registered.client_id, str(registered.client_secret))
    for resource in (other, "https://nowhere.example.com"):
        refused_target = client.post(TOKEN, data={**form, "resource": resource}, auth=auth)
        assert refused_target.status_code == 400
        assert refused_target.json()["error"] == "invalid_target"
    tokens = client.post(TOKEN, data={**form, "resource": ORDERS}, auth=auth).json()
    assert tokens["scope"] == "openid offline_access read"
    moved = refresh_grant(client, registered, tokens["refresh_token"], resource=other)
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_target"


def test_client_credentials_for_a_resource_get_the_client_roles_permissions(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    reader = orders_setup(client, admin_headers, user)
    service = make_client(db, grant_types=["client_credentials"], redirect_uris=[],
                          resources=[ORDERS])  # fmt: skip
    auth = (service.client_id, str(service.client_secret))
    put = client.put(api(f"/clients/{service.client_id}/roles"), json={"roles": [reader["id"]]},
                     headers=admin_headers)  # fmt: skip
    assert put.status_code == 200, put.text
    form = {"grant_type": "client_credentials", "resource": ORDERS}
    asked = client.post(TOKEN, data={**form, "scope": "read write"}, auth=auth).json()
    assert asked["scope"] == "read"
    assert verified(client, asked["access_token"], ORDERS)["sub"] == service.client_id
    everything = client.post(TOKEN, data=form, auth=auth).json()
    assert everything["scope"] == "read"
    for bad in ("https://nowhere.example.com", ""):
        refused_target = client.post(TOKEN, data={**form, "resource": bad}, auth=auth)
        assert refused_target.json()["error"] == "invalid_target"
    plain = client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "read"},
                        auth=auth)  # fmt: skip
    assert plain.json()["error"] == "invalid_scope"


# Organizations


def test_an_organization_named_by_the_request_goes_into_the_tokens_for_members_only(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers, ORDERS, "read", "write")
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    acme = add_member(db, user, [writer["id"]], slug="acme")
    add_member(db, make_other(db), [], slug="globex")
    registered = make_client(db, first_party=True, resources=[ORDERS], organization_usage="allow")
    scope = "openid offline_access read write"
    for ref in ("acme", str(acme.id)):
        answer = authorized(client, registered, user, scope, resource=ORDERS, organization=ref)
        tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
        assert tokens["scope"] == "openid offline_access write"  # held in acme only
        for token, audience in ((tokens["access_token"], ORDERS),
                                (tokens["id_token"], registered.client_id)):  # fmt: skip
            claims = verified(client, token, audience)
            assert claims["org_id"] == str(acme.id) and claims["org_slug"] == "acme"
    refreshed = refresh_grant(client, registered, tokens["refresh_token"]).json()
    assert verified(client, refreshed["access_token"], ORDERS)["org_id"] == str(acme.id)
    assert refreshed["scope"] == "openid offline_access write"

    for ref in ("globex", "nowhere", "x" * 64):
        answer = authorized(client, registered, user, scope, resource=ORDERS, organization=ref)
        assert answer["error"] == "access_denied", ref
    # Without the parameter (allow): no organization, the global roles only.
    answer = authorized(client, registered, user, scope, resource=ORDERS)
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    assert tokens["scope"] == "openid offline_access"
    assert "org_id" not in verified(client, tokens["access_token"], ORDERS)


def make_other(db: Session) -> User:
    return make_user(db, email="other@example.com")


def test_a_client_that_uses_no_organization_ignores_the_parameter(
    client: TestClient, user: User, db: Session
) -> None:
    registered = make_client(db, first_party=True)
    answer = authorized(client, registered, user, "openid", organization="nowhere")
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    assert "org_id" not in verified(client, tokens["id_token"], registered.client_id)


def test_a_client_that_requires_an_organization_lets_the_user_pick_one(
    client: TestClient, user: User, db: Session
) -> None:
    acme = add_member(db, user, [], slug="acme")
    add_member(db, user, [], slug="initech")
    add_member(db, make_other(db), [], slug="globex")
    registered = make_client(db, first_party=True, organization_usage="require")
    b = browser(client)
    started = start(oauth_client(client, registered, scope="openid"))
    page = sign_in(b, started.url, user.email, PASSWORD)
    assert page.status_code == 200 and "Choose an organization" in page.text
    assert "Acme" in page.text and "Initech" in page.text and "Globex" not in page.text
    fields = form_fields(page.text)
    forged = b.post("/oauth/authorize/organization",
                    data={**fields, "csrf_token": "x", "organization": str(acme.id)})  # fmt: skip
    assert forged.status_code == 403
    other = b.post("/oauth/authorize/organization", data={**fields, "organization": "globex"})
    assert redirect_params(other)["error"] == "access_denied"
    picked = b.post("/oauth/authorize/organization", data={**fields, "organization": str(acme.id)})
    answer = redirect_params(picked)
    tokens = exchange(client, registered, answer["code"], started.verifier).json()
    assert verified(client, tokens["id_token"], registered.client_id)["org_slug"] == "acme"

    loner = make_user(db, email="loner@example.com")
    started = start(oauth_client(client, registered, scope="openid"))
    answer = redirect_params(sign_in(browser(client), started.url, loner.email, PASSWORD))
    assert answer["error"] == "access_denied"
    none = start(oauth_client(client, registered, scope="openid"), prompt="none")
    # the picker is a page the member must act on: OIDC Core §3.1.2.6
    assert redirect_params(b.get(none.url))["error"] == "interaction_required"


# The roles and organizations scopes


def test_the_roles_and_organizations_scopes_name_them_in_the_id_token_and_userinfo(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    create_resource(client, admin_headers, ORDERS, "read", "write")
    reader = orders_setup_role(client, admin_headers, user, "reader", "read")
    writer = create_role(client, admin_headers, "writer", (ORDERS, "write"))
    acme = add_member(db, user, [writer["id"]], slug="acme")
    initech = add_member(db, user, [], slug="initech")
    registered = make_client(
        db, first_party=True, organization_usage="allow",
        scopes=["openid", "roles", "organizations", "email"],
    )  # fmt: skip
    assert (
        "organizations"
        in client.get("/.well-known/openid-configuration").json()["scopes_supported"]
    )
    answer = authorized(client, registered, user, "openid roles organizations", organization="acme")
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    claims = verified(client, tokens["id_token"], registered.client_id)
    assert claims["role"] == "user" and claims["roles"] == ["reader", "writer"]
    assert sorted(claims["organizations"]) == sorted([str(acme.id), str(initech.id)])
    info = client.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["roles"] == ["reader", "writer"] and info.json()["role"] == "user"
    assert sorted(info.json()["organizations"]) == sorted(claims["organizations"])

    answer = authorized(client, registered, user, "openid roles")  # no organization
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    claims = verified(client, tokens["id_token"], registered.client_id)
    assert claims["roles"] == [reader["name"]] and "organizations" not in claims
    answer = authorized(client, registered, user, "openid email")
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    claims = verified(client, tokens["id_token"], registered.client_id)
    assert "roles" not in claims and "organizations" not in claims


def orders_setup_role(
    client: TestClient, headers: dict[str, str], user: User, name: str, permission: str
) -> dict[str, Any]:
    role = create_role(client, headers, name, (ORDERS, permission))
    assigned = client.put(api(f"/users/{user.id}/roles"), json={"roles": [role["id"]]},
                          headers=headers)  # fmt: skip
    assert assigned.status_code == 200, assigned.text
    return role


# Ending what an organization or a role no longer allows


def org_tokens(
    client: TestClient, db: Session, user: User, registered: ClientCreated, slug: str = "acme"
) -> dict[str, Any]:
    answer = authorized(client, registered, user, "openid offline_access", organization=slug)
    tokens = exchange(client, registered, answer["code"], answer["verifier"]).json()
    assert "refresh_token" in tokens, tokens
    return dict(tokens)


def introspected(client: TestClient, service: ClientCreated, token: str) -> dict[str, Any]:
    seen = client.post(
        "/oauth/introspect",
        data={"token": token},
        auth=(service.client_id, str(service.client_secret)),
    )
    assert seen.status_code == 200, seen.text
    return dict(seen.json())


@pytest.fixture
def org_client(db: Session) -> ClientCreated:
    return make_client(db, first_party=True, organization_usage="allow")


@pytest.fixture
def service(db: Session) -> ClientCreated:
    return make_client(db, grant_types=["client_credentials"], redirect_uris=[])


def test_removing_a_member_ends_their_sessions_bound_to_that_organization(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    db: Session,
    org_client: ClientCreated,
    service: ClientCreated,
) -> None:
    acme = add_member(db, user, [], slug="acme")
    add_member(db, user, [], slug="initech")
    other = make_other(db)
    add_member(db, other, [], slug="acme")
    mine, theirs = (
        org_tokens(client, db, user, org_client),
        org_tokens(client, db, other, org_client),
    )
    elsewhere = org_tokens(client, db, user, org_client, slug="initech")
    for token in (mine["access_token"], mine["refresh_token"]):
        seen = introspected(client, service, token)
        assert seen["active"] is True and seen["org_id"] == str(acme.id)

    removed = client.delete(
        api(f"/organizations/{acme.id}/members/{user.id}"), headers=admin_headers
    )
    assert removed.status_code == 204, removed.text
    refused_refresh = refresh_grant(client, org_client, mine["refresh_token"])
    assert refused_refresh.status_code == 400 and refused_refresh.json()["error"] == "invalid_grant"
    for token in (mine["access_token"], mine["refresh_token"]):
        assert introspected(client, service, token) == {"active": False}
    for kept in (theirs, elsewhere):  # another member's, and another organization's
        assert refresh_grant(client, org_client, kept["refresh_token"]).status_code == 200


def test_deleting_the_organization_ends_every_members_sessions_bound_to_it(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    db: Session,
    org_client: ClientCreated,
    service: ClientCreated,
) -> None:
    acme = add_member(db, user, [], slug="acme")
    add_member(db, make_other(db), [], slug="acme")
    mine = org_tokens(client, db, user, org_client)
    unbound = authorized(client, org_client, user, "openid offline_access")
    plain = exchange(client, org_client, unbound["code"], unbound["verifier"]).json()
    deleted = client.delete(api(f"/organizations/{acme.id}"), headers=admin_headers)
    assert deleted.status_code == 204, deleted.text
    assert (
        refresh_grant(client, org_client, mine["refresh_token"]).json()["error"] == "invalid_grant"
    )
    assert introspected(client, service, mine["refresh_token"]) == {"active": False}
    assert refresh_grant(client, org_client, plain["refresh_token"]).status_code == 200


def test_deleting_a_role_ends_the_sessions_of_those_who_held_it_in_an_organization(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session,
    org_client: ClientCreated,
) -> None:  # fmt: skip
    create_resource(client, admin_headers, ORDERS, "read")
    reader = create_role(client, admin_headers, "reader", (ORDERS, "read"))
    add_member(db, user, [reader["id"]], slug="acme")
    other = make_other(db)
    add_member(db, other, [], slug="acme")
    mine, theirs = (
        org_tokens(client, db, user, org_client),
        org_tokens(client, db, other, org_client),
    )
    gone = client.delete(api(f"/roles/{reader['id']}"), headers=admin_headers)
    assert gone.status_code == 204, gone.text
    assert (
        refresh_grant(client, org_client, mine["refresh_token"]).json()["error"] == "invalid_grant"
    )
    assert refresh_grant(client, org_client, theirs["refresh_token"]).status_code == 200


def test_a_member_removed_while_their_refresh_is_in_flight_cannot_refresh(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    db: Session,
    org_client: ClientCreated,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refresh has read its session (live) when the removal commits; its rotation, a
    compare-and-swap on the session row, then finds it ended."""
    acme = add_member(db, user, [], slug="acme")
    tokens = org_tokens(client, db, user, org_client)
    reached, resume = threading.Event(), threading.Event()
    real = sessions.rotate

    def paused(*args: Any, **kwargs: Any) -> bool:
        reached.set()
        resume.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(sessions, "rotate", paused)
    answers: list[Any] = []
    racer = threading.Thread(
        target=lambda: answers.append(refresh_grant(client, org_client, tokens["refresh_token"]))
    )
    racer.start()
    assert reached.wait(10)
    removed = client.delete(
        api(f"/organizations/{acme.id}/members/{user.id}"), headers=admin_headers
    )
    assert removed.status_code == 204, removed.text
    resume.set()
    racer.join(20)
    assert answers and answers[0].status_code == 400, answers[0].text
    assert answers[0].json()["error"] == "invalid_grant"


# Consent


def test_consent_lists_the_permissions_asked_for_by_their_descriptions(
    client: TestClient, admin_headers: dict[str, str], user: User, db: Session
) -> None:
    orders_setup(client, admin_headers, user)
    registered = make_client(db, resources=[ORDERS])  # third party
    b = browser(client)
    started = start(oauth_client(client, registered, scope="openid read write"), resource=ORDERS)
    page = sign_in(b, started.url, user.email, PASSWORD)
    assert page.status_code == 200 and "wants to" in page.text
    assert "Know who you are" in page.text
    assert "may read" in page.text and "may write" in page.text and "may delete" not in page.text
    answer = redirect_params(submit(b, page, "/oauth/authorize/consent", action="allow"))
    tokens = exchange(client, registered, answer["code"], started.verifier).json()
    assert tokens["scope"] == "openid read"

    again = start(oauth_client(client, registered, scope="openid read"), resource=ORDERS)
    assert "code" in redirect_params(b.get(again.url))  # allowed already
    more = start(oauth_client(client, registered, scope="openid delete"), resource=ORDERS)
    page = b.get(more.url)
    assert page.status_code == 200 and "may delete" in page.text and "may read" not in page.text
