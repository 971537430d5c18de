"""The OAuth/OIDC protocol's HTTP surface: form bodies in, RFC-shaped answers out (token,
introspection, revocation, userinfo, discovery); protocol errors become RFC 6749 §5.2 /
RFC 6750 §3 answers here."""

from typing import Any
from urllib.parse import unquote_plus, unquote_to_bytes

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException

from app.api.deps import SessionDep, client_actor
from app.oauth import discovery, grants, introspection, revocation
from app.oauth.client_auth import parse_basic
from app.oauth.errors import InvalidRequest, OAuthError
from app.oauth.userinfo import userinfo
from app.steps import run_transaction

router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class NoStoreJSON(Response):
    """A JSON answer that no cache keeps (RFC 6749 §5.1, RFC 7662, OIDC userinfo), its
    headers built once: introspection answers one on every request a resource server
    serves."""

    media_type = "application/json"
    NO_STORE_HEADERS = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]

    def __init__(self, content: Any) -> None:
        super().__init__(to_json(content))
        self.raw_headers.extend(self.NO_STORE_HEADERS)


DISCOVERY_CACHE = {"Cache-Control": "public, max-age=300"}
MAX_FORM_FIELDS = 32
MAX_FIELD_BYTES = 1024 * 1024  # Starlette's max_part_size: a field's name and value together


def _has_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


async def _form(request: Request) -> dict[str, list[str]]:
    if not _has_form(request):
        raise InvalidRequest("The body must be application/x-www-form-urlencoded")
    body = await request.body()
    form = parse_form(body)
    if not readable(body):
        raise InvalidRequest("Form values must be UTF-8 text without NUL characters")
    return form


def readable(body: bytes) -> bool:
    """Whether every name and value of a form body is, percent-decoded, UTF-8 text without
    NUL: anything else is refused (invalid_request) before it is looked up. Decoding the body
    whole tells the same as decoding each field: "&" and "=" end any UTF-8 sequence."""
    if b"%" in body:
        body = unquote_to_bytes(body)
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_form(body: bytes) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body, parsed as Starlette's request.form() parses
    it (python-multipart's querystring parser: fields split on "&", empty ones skipped, a
    field without "=" has an empty value, latin-1 then percent- and plus-decoded), with its
    limits and its 400 answers (MAX_FORM_FIELDS fields, MAX_FIELD_BYTES a field), in a
    fraction of the parser's time: the token and introspection endpoints parse one on every
    request (bench/README.md, introspection)."""
    values: dict[str, list[str]] = {}
    fields = 0
    for field in body.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        if len(name) + len(value) > MAX_FIELD_BYTES:
            raise HTTPException(400, f"Field exceeded maximum size of {MAX_FIELD_BYTES // 1024}KB.")
        fields += 1
        if fields > MAX_FORM_FIELDS:
            raise HTTPException(
                400, f"Too many fields. Maximum number of fields is {MAX_FORM_FIELDS}."
            )
        key = unquote_plus(name.decode("latin-1"))
        values.setdefault(key, []).append(unquote_plus(value.decode("latin-1")))
    return values


@router.post(
    discovery.INTROSPECTION_PATH,
    responses={400: {"description": "No token"}, 401: {"description": "Bad client"}},
)
async def introspect(request: Request) -> NoStoreJSON:
    """RFC 7662 introspection, for confidential clients (resource servers): on the event
    loop throughout, no database session (see oauth/introspection.py)."""
    form = await _form(request)
    basic = parse_basic(request.headers.get("authorization"))
    answer = await introspection.introspection_request(form=form, basic=basic)
    return NoStoreJSON(answer)


@router.post(
    discovery.TOKEN_PATH,
    responses={400: {"description": "RFC 6749 §5.2 error"}, 401: {"description": "Bad client"}},
)
async def token(request: Request, session: SessionDep) -> NoStoreJSON:
    """The token endpoint: authorization_code (with PKCE), refresh_token and
    client_credentials grants."""
    form = await _form(request)
    basic = parse_basic(request.headers.get("authorization"))
    answer = await run_transaction(
        grants.token, session, form=form, basic=basic, actor=client_actor(request)
    )
    return NoStoreJSON(answer.model_dump(exclude_none=True))


@router.post(
    discovery.REVOCATION_PATH,
    responses={400: {"description": "No token"}, 401: {"description": "Bad client"}},
)
async def revoke(request: Request, session: SessionDep) -> Response:
    """RFC 7009 revocation: 200 for any token, known or not; a client ends only its own."""
    form = await _form(request)
    basic = parse_basic(request.headers.get("authorization"))
    await revocation.revocation_request(
        session, form=form, basic=basic, actor=client_actor(request)
    )
    return Response(status_code=200, headers=NO_STORE)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


USERINFO_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or revoked access token"},
    403: {"description": "The access token lacks the openid scope"},
}


@router.get(discovery.USERINFO_PATH, responses=USERINFO_RESPONSES)
async def userinfo_get(request: Request) -> NoStoreJSON:
    """OIDC userinfo: `sub` and the claims of the access token's scopes."""
    return NoStoreJSON(await userinfo(_bearer(request)))


@router.post(discovery.USERINFO_PATH, responses=USERINFO_RESPONSES)
async def userinfo_post(request: Request) -> NoStoreJSON:
    """OIDC userinfo, by POST (OIDC Core §5.3.1): the access token in the Authorization
    header, or as `access_token` in a form body (RFC 6750 §2.2), never both (§2)."""
    header = _bearer(request)
    if not _has_form(request):
        return NoStoreJSON(await userinfo(header))
    values = parse_form(await request.body()).get("access_token", [])
    if len(values) > 1 or (values and header is not None):
        raise InvalidRequest("Send the access token once, in one way")
    return NoStoreJSON(await userinfo(values[0] if values else header))


@router.get("/.well-known/openid-configuration")
def openid_configuration() -> JSONResponse:
    return JSONResponse(discovery.metadata(), headers=DISCOVERY_CACHE)


@router.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata() -> JSONResponse:
    return JSONResponse(discovery.metadata(), headers=DISCOVERY_CACHE)


async def oauth_error(_request: Request, error: Exception) -> JSONResponse:
    """Every protocol error's answer, as the error says it; never stored (RFC 6749 §5.1)."""
    assert isinstance(error, OAuthError)
    return JSONResponse(
        error.body(), status_code=error.status, headers={**NO_STORE, **error.headers()}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, oauth_error)
