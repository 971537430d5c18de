"""/account/export: everything the service holds about the person as a JSON download
(auth/export.account_export: no hash, secret, token or digest in it), audited."""

import json

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import export
from app.steps import run_transaction
from app.web.account.access import AccountUser, login_url
from app.web.account.rendering import account_router

router = account_router()
PATH = "/account/export"
FILENAME = "account-export.json"


@router.get("/export")
async def export_account(request: Request, session: SessionDep, account: AccountUser) -> Response:
    document = await run_transaction(
        export.account_export, session, user_id=account.user.id, actor=account.actor(request)
    )
    if document is None:  # deleted since this request read it: signed out, as a deleted account is
        return RedirectResponse(login_url(PATH), status_code=303)
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{FILENAME}"'},
    )
