"""/account: the signed-in person's own account at a glance, and the way to each page."""

from fastapi import Request
from starlette.responses import Response

from app.web.account.access import AccountUser
from app.web.account.rendering import account_router, page

router = account_router()


@router.get("")
def overview(request: Request, account: AccountUser) -> Response:
    return page(request, "overview.html", account=account)
