"""POST /authz/check: does a user hold a permission now? For resource servers (a confidential
client, authenticated as at introspection) and admins (`authz:manage`)."""

from fastapi import APIRouter, Request
from sqlmodel import Session

from app.api.deps import SessionDep, check_permission, request_caller
from app.core.permissions import Permission
from app.crud import permission_checks
from app.models.authz import Check, CheckRequest, CheckResults
from app.oauth import client_auth
from app.oauth.errors import InvalidClient
from app.steps import run_transaction

router = APIRouter(tags=["authorization"])


@router.post(
    "/authz/check",
    response_model=CheckResults,
    responses={
        401: {"description": "Client authentication failed, or no credentials"},
        403: {"description": "A bearer token without authz:manage"},
    },
)
async def check(request: Request, body: CheckRequest, session: SessionDep) -> CheckResults:
    """Each check's answer, from the database at this moment (roles as they are now)."""
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        check_permission(await request_caller(request), Permission.AUTHZ_MANAGE)
        return CheckResults(
            results=await run_transaction(permission_checks.check_all, session, body.checks)
        )
    credentials = client_auth.Credentials(
        basic=client_auth.parse_basic(authorization),
        client_id=body.client_id,
        client_secret=body.client_secret,
    )
    client_auth.claimed_client_id(credentials)  # the rules that need no database first
    results = await run_transaction(_check_as_client, session, credentials, body.checks)
    return CheckResults(results=results)


def _check_as_client(
    session: Session, credentials: client_auth.Credentials, checks: list[Check]
) -> list[bool]:
    if client_auth.authenticate(session, credentials).public:
        raise InvalidClient("A public client cannot call the check endpoint")
    return permission_checks.check_all(session, checks)
