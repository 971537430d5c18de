"""The authorization loads of the benchmark (AUTHZ.md "Limits and speed", issue 22): the check
endpoint beside the bare JWT endpoint, and a token request with `resource` and an
organization beside plain client_credentials, on an empty database, for a user in 1,000
organizations, and on 10,000 organizations with 100,000 memberships. bench/run.py measures
them in its run (`--authz`: these alone, with the two baselines).

The token request is a refresh_token grant of an organization-bound OAuth session that names
its `resource` again (RFC 8707 §2.2): it recomputes the user's permissions in the
organization from the roles as they are now, so it is the request whose cost could grow with
organizations and memberships, and it repeats without limit. Each of wrk's connections
carries its own chain of refresh tokens (bench/request.lua swaps in the token each answer
rotated in); the sessions are opened just before each load by single sign-on on the hosted
page (authorization requests with `resource` and `organization`, then code exchanges).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import oauth_load

RESOURCE = "https://api.bench.local/orders"
SLUG = "bench-org"
# 5 kinds of thing x 4 verbs: 20 permissions on the resource
PERMISSIONS = [f"{verb}:{thing}" for thing in ("orders", "invoices", "customers", "products",
               "reports") for verb in ("read", "write", "delete", "export")]  # fmt: skip
ROLES = {
    "bench-viewer": [p for p in PERMISSIONS if p.startswith("read:")],
    "bench-editor": [p for p in PERMISSIONS if p.startswith(("read:", "write:"))],
    "bench-admin": PERMISSIONS,
}
# What the client asks for: OIDC scopes and four of the resource's permissions; the user holds
# three of them (read:orders and read:invoices globally, write:orders in the organization).
ASKED = ["openid", "offline_access", "read:orders", "write:orders", "read:invoices",
         "delete:orders"]  # fmt: skip
TOKEN_USER = 3  # user3@bench.local signs in (user1: the OAuth loads, user2: the logins)
CHECK_USERS = range(10, 20)  # the members whose permissions a batch checks
USER_ORGANIZATIONS = 1_000
ORGANIZATIONS = 10_000
MEMBERSHIPS = 100_000
KEYS = ("authz_check_one", "authz_check", "authz_token_plain", "authz_token",
        "authz_token_user_orgs", "authz_token_many_orgs")  # fmt: skip
CLIENT_CREDENTIALS = "oauth_client_credentials"


@dataclass
class Fixture:
    """What set_up made: the clients (web: the app registered for the resource; service: the
    resource server that calls the check endpoint), the signed-in user's browser, the ids the
    loads name."""

    clients: oauth_load.Clients
    browser: oauth_load.Browser
    organization_id: str
    roles: dict[str, str]
    check_users: list[str]

    def authorize_path(self, *, bound: bool = True) -> str:
        """An authorization request with `resource` and `organization` (bound), or a plain
        one (openid offline_access, no resource, no organization)."""
        if not bound:
            return self.clients.authorize_with(scope="openid offline_access")
        return self.clients.authorize_with(
            resource=RESOURCE, organization=SLUG, scope=" ".join(ASKED)
        )


def user_ids(url: str, emails: list[str]) -> dict[str, str]:
    """{email: id} of seeded users, read from the benchmark's database."""
    from sqlalchemy import create_engine, select

    from app.models.user import User

    engine = create_engine(url)
    table = User.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.email, table.c.id).where(table.c.email.in_(emails))
        ).all()
    engine.dispose()
    return {email: str(user_id) for email, user_id in rows}


def set_up(bench: Any, port: int, admin_token: str, url: str) -> Fixture:
    """Through the API, as an admin would: the resource and its roles, the organization and
    its members, a web client registered for the resource with organization_usage=allow, and
    a resource server's client (its Basic credentials call the check endpoint)."""
    api = bench.API
    call = oauth_load._json
    call(port, "POST", f"{api}/resources", admin_token, {
        "identifier": RESOURCE, "name": "Bench orders API",
        "permissions": [{"name": name, "description": name} for name in PERMISSIONS],
    })  # fmt: skip
    roles = {}
    for name, permissions in ROLES.items():
        refs = [{"resource": RESOURCE, "name": p} for p in permissions]
        body = {"name": name, "permissions": refs}
        roles[name] = call(port, "POST", f"{api}/roles", admin_token, body)["id"]
    organization = call(
        port, "POST", f"{api}/organizations", admin_token, {"name": "Bench Org", "slug": SLUG}
    )
    emails = [f"user{i}@{bench.DOMAIN}" for i in (TOKEN_USER, *CHECK_USERS)]
    ids = user_ids(url, emails)
    me = ids[emails[0]]
    # the user: a viewer globally, an editor in the organization; the members checked:
    # viewers, admins and editors there
    call(port, "PUT", f"{api}/users/{me}/roles", admin_token, {"roles": [roles["bench-viewer"]]})
    for index, email in enumerate(emails):
        role = ("bench-editor", "bench-viewer", "bench-admin")[index % 3]
        call(port, "PUT", f"{api}/organizations/{organization['id']}/members/{ids[email]}",
             admin_token, {"roles": [roles[role]]})  # fmt: skip
    web = call(port, "POST", f"{api}/clients", admin_token, {
        "name": "bench orders app", "redirect_uris": [oauth_load.REDIRECT_URI],
        "first_party": True, "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "offline_access"], "resources": [RESOURCE],
        "organization_usage": "allow",
    })  # fmt: skip
    service = call(port, "POST", f"{api}/clients", admin_token, {
        "name": "bench orders API (resource server)", "grant_types": ["client_credentials"],
        "scopes": ["roles"],
    })  # fmt: skip
    clients = oauth_load.Clients(web=web, service=service)
    path = clients.authorize_with(resource=RESOURCE, organization=SLUG, scope=" ".join(ASKED))
    return Fixture(
        clients=clients,
        browser=oauth_load.sign_in(port, clients, emails[0], bench.PASSWORD, path),
        organization_id=organization["id"],
        roles=roles,
        check_users=[ids[e] for e in emails[1:]],
    )


def refresh_tokens(port: int, fixture: Fixture, count: int, *, bound: bool = True) -> list[str]:
    """`count` fresh OAuth sessions, organization-bound with the resource unless not `bound`
    (single sign-on, then one code exchange each): their refresh tokens."""
    tokens = []
    web = fixture.clients.web
    for _ in range(count):
        status, headers, _ = fixture.browser.send("GET", fixture.authorize_path(bound=bound))
        if status != 302 or "code=" not in headers.get("location", ""):
            raise SystemExit(f"single sign-on answered {status}, not a redirect with a code")
        answer = oauth_load._form(port, "/oauth/token", {
            "grant_type": "authorization_code", "code": oauth_load._code(headers["location"]),
            "redirect_uri": oauth_load.REDIRECT_URI, "code_verifier": fixture.clients.verifier,
        }, (web["client_id"], web["client_secret"]))  # fmt: skip
        claims = _claims(answer["access_token"])
        if bound and (claims["aud"] != RESOURCE or claims["org_id"] != fixture.organization_id):
            raise SystemExit(f"the access token is not for the resource and organization: {claims}")
        tokens.append(answer["refresh_token"])
    return tokens


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def check_body(fixture: Fixture, count: int) -> str:
    """A check request of `count` checks: each a different member, one permission each in
    the organization (half of them held)."""
    checks = [
        {"user_id": fixture.check_users[i % len(fixture.check_users)], "resource": RESOURCE,
         "permission": PERMISSIONS[(3 * i) % len(PERMISSIONS)], "organization": SLUG}
        for i in range(count)
    ]  # fmt: skip
    return json.dumps({"checks": checks})


def checked(port: int, path: str, fixture: Fixture) -> Any:
    """The answer to the batch of 10 checks, once (a check that the load asks what it should)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": basic(fixture.clients.service), "Content-Type": "application/json"}
    conn.request("POST", path, body=check_body(fixture, 10), headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"POST {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data)


def basic(client: dict[str, Any]) -> str:
    raw = f"{client['client_id']}:{client['client_secret']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


# ---------------------------------------------------------------- scale: direct inserts


def _rows(n: int, make: Callable[[int], dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, 5000):
        yield [make(i) for i in range(start, min(start + 5000, n))]


def seed_organizations(
    url: str, *, role_id: str, first: int, stop: int, members: dict[int, list[str]]
) -> float:
    """Organizations scale-<first>..scale-<stop-1>, each with the members `members[i]` names
    (user ids), each member holding `role_id` there. Seconds taken."""
    from sqlalchemy import create_engine, insert, text

    from app.models.organization import Membership, MembershipRole, Organization

    began = time.perf_counter()
    engine = create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
    at = datetime.now(UTC) - timedelta(days=30)
    org_ids = [uuid.uuid4() for _ in range(first, stop)]
    pairs = [(org_ids[i - first], uuid.UUID(member)) for i in range(first, stop)
             for member in members[i]]  # fmt: skip
    membership_ids = [uuid.uuid4() for _ in pairs]
    tables = (Organization.__table__, Membership.__table__, MembershipRole.__table__)  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for chunk in _rows(len(org_ids), lambda i: {
            "id": org_ids[i], "name": f"Scale {first + i}", "slug": f"scale-{first + i}",
            "created_at": at,
        }):  # fmt: skip
            connection.execute(insert(tables[0]), chunk)
        for chunk in _rows(len(pairs), lambda i: {
            "id": membership_ids[i], "organization_id": pairs[i][0], "user_id": pairs[i][1],
            "created_at": at,
        }):  # fmt: skip
            connection.execute(insert(tables[1]), chunk)
        for chunk in _rows(len(pairs), lambda i: {
            "membership_id": membership_ids[i], "role_id": uuid.UUID(role_id),
        }):  # fmt: skip
            connection.execute(insert(tables[2]), chunk)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "postgresql":  # as autovacuum would after a bulk load
            for name in ("organization", "membership", "membership_role"):
                connection.execute(text(f"VACUUM ANALYZE {name}"))
        else:  # the bulk load's pages out of the WAL now, not by the first writes measured
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return time.perf_counter() - began


def counts(url: str) -> tuple[int, int]:
    """(organizations, memberships) in the database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT (SELECT count(*) FROM organization), (SELECT count(*) FROM membership)")
        ).one()
    engine.dispose()
    return int(found[0]), int(found[1])


def all_user_ids(url: str) -> list[str]:
    from sqlalchemy import create_engine, select

    from app.models.user import User

    engine = create_engine(url)
    table = User.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        ids = [
            str(x) for x in connection.execute(select(table.c.id).order_by(table.c.email)).scalars()
        ]
    engine.dispose()
    return ids


# ---------------------------------------------------------------- the loads


def measure_authz(
    bench: Any,
    measure: Callable[..., Any],
    *,
    port: int,
    admin_token: str,
    url: str,
    connections: int,
    seconds: float,
    warm: Callable[..., Any],
) -> None:
    """The check endpoint, then the token request on the three databases (KEYS)."""
    base = f"http://127.0.0.1:{port}"
    fixture = set_up(bench, port, admin_token, url)
    check_url = f"{base}{bench.API}/authz/check"
    answer = checked(port, f"{bench.API}/authz/check", fixture)
    if answer != {"results": [True, True, False, False, True, False, False, True, True, False]}:
        raise SystemExit(f"the batch of checks answered {answer}")
    for key, count in (("authz_check_one", 1), ("authz_check", 10)):
        kwargs = {
            "method": "POST", "body": check_body(fixture, count),
            "content_type": "application/json", "authorization": basic(fixture.clients.service),
        }  # fmt: skip
        warm(check_url, connections=connections, seconds=seconds / 5, **kwargs)
        plural = "check" if count == 1 else "checks"
        measure(key, f"POST /authz/check, {count} {plural} (Basic)", check_url,
                connections=connections, seconds=seconds, **kwargs)  # fmt: skip

    token_url = f"{base}/oauth/token"
    web = fixture.clients.web

    def token_load(key: str, name: str, *, bound: bool = True) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": "{refresh_token}"}
        if bound:
            form["resource"] = RESOURCE
        form |= {"client_id": web["client_id"], "client_secret": web["client_secret"]}
        body = urllib.parse.urlencode(form, safe="{}")
        # one chain per connection, fresh for each run (a chain spent by the warm-up is gone)
        warm(token_url, connections=connections, seconds=seconds / 5, method="POST", body=body,
             refresh_tokens=refresh_tokens(port, fixture, connections, bound=bound))  # fmt: skip
        chains = refresh_tokens(port, fixture, connections, bound=bound)
        measure(key, name, token_url, connections=connections, seconds=seconds, method="POST",
                body=body, refresh_tokens=chains)  # fmt: skip

    token_load("authz_token_plain", "POST /oauth/token, refresh_token (no resource, no "
               "organization)", bound=False)  # fmt: skip
    label = "POST /oauth/token, refresh_token with resource and organization"
    orgs, memberships = counts(url)
    token_load("authz_token", f"{label}, {orgs} organization ({memberships} memberships)")

    email = f"user{TOKEN_USER}@{bench.DOMAIN}"
    me = user_ids(url, [email])[email]
    role = fixture.roles["bench-viewer"]
    took = seed_organizations(
        url, role_id=role, first=orgs, stop=USER_ORGANIZATIONS,
        members={i: [me] for i in range(orgs, USER_ORGANIZATIONS)},
    )  # fmt: skip
    orgs, memberships = counts(url)
    print(f"  seeded the user into {USER_ORGANIZATIONS:,} organizations in {took:.1f} s")
    token_load("authz_token_user_orgs",
               f"{label}, the user in {USER_ORGANIZATIONS:,} organizations")  # fmt: skip

    users = [u for u in all_user_ids(url) if u != me]
    members = spread(users, first=orgs, stop=ORGANIZATIONS, memberships=MEMBERSHIPS - memberships)
    took = seed_organizations(url, role_id=role, first=orgs, stop=ORGANIZATIONS, members=members)
    orgs, memberships = counts(url)
    print(f"  seeded up to {orgs:,} organizations, {memberships:,} memberships in {took:.1f} s")
    token_load("authz_token_many_orgs",
               f"{label}, {orgs:,} organizations, {memberships:,} memberships")  # fmt: skip


def spread(users: list[str], *, first: int, stop: int, memberships: int) -> dict[int, list[str]]:
    """`memberships` members over organizations first..stop-1, as evenly as they go, a user at
    most once in each."""
    per, extra = divmod(memberships, stop - first)
    members = {}
    for i in range(first, stop):
        count = per + (i - first < extra)
        start = (i * 37) % len(users)
        members[i] = [users[(start + k) % len(users)] for k in range(count)]
    return members


def cost(load: Any, postgres: bool) -> float | None:
    """Server CPU per request, plus the database's own on PostgreSQL."""
    if load.cpu_us is None:
        return None
    return float(load.cpu_us + ((load.database_cpu_us or 0) if postgres else 0))


def checks(loads: dict[str, Any], postgres: bool) -> list[tuple[str, str, str, bool | None]]:
    """The rows of AUTHZ.md's targets (and two figures beside them) for run.py's table."""

    def fmt(value: float | None, digits: int = 0) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    def share(key: str, base: str) -> tuple[str, float] | None:
        """requests/s of `key` ÷ those of `base`, and beside it their costs per request."""
        if key not in loads or base not in loads or not loads[base].rps:
            return None
        ratio = loads[key].rps / loads[base].rps
        mine, theirs = cost(loads[key], postgres), cost(loads[base], postgres)
        times = f"x{mine / theirs:.2f}" if mine is not None and theirs else "—"
        return (f"{fmt(loads[key].rps)} vs {fmt(loads[base].rps)} req/s ({ratio:.0%}); CPU "
                f"{fmt(mine)} vs {fmt(theirs)} µs ({times})", ratio)  # fmt: skip

    rows: list[tuple[str, str, str, bool | None]] = []
    for key, name, target in (
        ("authz_check", "POST /authz/check, batch of 10, requests/s ÷ bare JWT endpoint", 0.4),
        ("authz_check_one", "POST /authz/check, 1 check, requests/s ÷ bare JWT endpoint", None),
    ):
        found = share(key, "bare")
        if found:
            rows.append((name, found[0], f"≥ {target:.0%}" if target else "(batch: ≥ 40%)",
                         found[1] >= target if target else None))  # fmt: skip
    found = share("authz_token", CLIENT_CREDENTIALS)
    if found:
        rows.append(("token request with resource and organization (refresh) requests/s ÷ "
                     "client_credentials", found[0], "≥ 80%", found[1] >= 0.8))  # fmt: skip
    found = share("authz_token", "authz_token_plain")
    if found:
        rows.append(("the same ÷ a refresh without resource and organization", found[0],
                     "(what they add)", None))  # fmt: skip
    what = "server + PostgreSQL CPU" if postgres else "server CPU"
    token = loads.get("authz_token")
    scales = (
        ("authz_token_user_orgs", f"the user in {USER_ORGANIZATIONS:,} organizations"),
        ("authz_token_many_orgs", f"{ORGANIZATIONS:,} organizations, {MEMBERSHIPS:,} memberships"),
    )
    for key, name in scales:
        if token and key in loads:
            empty, big = cost(token, postgres), cost(loads[key], postgres)
            ratio = big / empty if big is not None and empty else None
            p50 = loads[key].p50_ms / token.p50_ms if token.p50_ms else None
            rows.append((f"token request {what} per request: {name} ÷ empty database",
                         f"{fmt(big)} vs {fmt(empty)} µs (x{fmt(ratio, 2)}; p50 x{fmt(p50, 2)})",
                         "≤ x1.5", ratio is not None and ratio <= 1.5))  # fmt: skip
    return rows
