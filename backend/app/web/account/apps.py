"""/account/apps: the third-party applications the person allowed (their remembered
consents), with what each may do, by the descriptions the consent page shows; revoking one
withdraws the consent and ends its sessions (crud/clients.revoke_consent, audited)."""

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.crud import clients
from app.errors import NotFound
from app.steps import run_transaction
from app.web.account.access import Account, AccountForm, AccountUser
from app.web.account.messages import N_, Message
from app.web.account.rendering import account_router, page
from app.web.flow import SCOPE_DESCRIPTIONS, field

router = account_router()
PATH = "/account/apps"

REVOKED = N_("The application's access is revoked and its sessions have ended.")
GONE = N_("That application no longer has access.")


def described(scopes: list[str]) -> list[str]:
    """What each scope allows, as the consent page says it (a name without one, as it is)."""
    return [SCOPE_DESCRIPTIONS.get(name, name) for name in scopes]


async def _page(
    request: Request,
    session: SessionDep,
    account: Account,
    *,
    notice: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    consents = await run_transaction(clients.consents_of, session, account.user.id)
    return page(
        request,
        "apps.html",
        account=account,
        status_code=status_code,
        consents=consents,
        described=described,
        notice=Message(notice) if notice else None,
        message=Message(message) if message else None,
    )


@router.get("/apps")
async def apps_page(
    request: Request, session: SessionDep, account: AccountUser, done: str = ""
) -> Response:
    return await _page(request, session, account, notice=REVOKED if done == "revoked" else None)


@router.post("/apps/revoke")
async def revoke(
    request: Request, session: SessionDep, form: AccountForm, account: AccountUser
) -> Response:
    try:
        await run_transaction(
            clients.revoke_consent,
            session,
            user_id=account.user.id,
            client_id=field(form, "client_id")[: clients.MAX_ID_LENGTH + 1],
            actor=account.actor(request),
        )
    except NotFound:
        return await _page(request, session, account, message=GONE, status_code=404)
    return RedirectResponse(f"{PATH}?done=revoked", status_code=303)
