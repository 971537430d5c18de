"""/auth: register, login, refresh, logout."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.api.deps import ActorDep, AnonymousActor, PrincipalDep, SessionDep
from app.api.errors import Responses
from app.auth import login as login_flow
from app.auth import signup, tokens
from app.db import transaction
from app.models.token import MfaChallenge, RefreshRequest, TokenPair
from app.models.user import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # token answers, explicitly
UNAUTHORIZED: Responses = {401: {"description": "Missing, invalid or revoked credentials"}}
RATE_LIMITED: Responses = {
    429: {"description": "Too many attempts, or locked out; see Retry-After"}
}
# The caller's password (or a code) asked again before a sensitive change.
REAUTHENTICATION: Responses = {
    400: {"description": "Wrong or missing password (or code)"},
    429: {"description": "Too many wrong passwords or codes: locked out; see Retry-After"},
}


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={
        403: {"description": "Registration closed"},
        409: {"description": "Email taken"},
        **RATE_LIMITED,
    },
)
async def register(body: UserCreate, session: SessionDep, actor: AnonymousActor) -> UserRead:
    return UserRead.model_validate(await signup.sign_up(session, body=body, actor=actor))


@router.post(
    "/login",
    response_model=TokenPair | MfaChallenge,
    responses={
        **UNAUTHORIZED,
        **RATE_LIMITED,
        403: {"description": "Inactive or unverified user"},
    },
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    actor: AnonymousActor,
    response: Response,
) -> TokenPair | MfaChallenge:
    response.headers.update(NO_STORE)
    return await login_flow.login(session, email=form.username, password=form.password, actor=actor)


@router.post("/refresh", response_model=TokenPair, responses=UNAUTHORIZED)
def refresh(
    body: RefreshRequest, session: SessionDep, actor: AnonymousActor, response: Response
) -> TokenPair:
    response.headers.update(NO_STORE)
    return transaction(tokens.refresh, session, refresh_token=body.refresh_token, actor=actor)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
def logout(principal: PrincipalDep, session: SessionDep, actor: ActorDep) -> None:
    transaction(
        tokens.logout, session, user=principal.user, auth_session=principal.session, actor=actor
    )


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
def logout_all(principal: PrincipalDep, session: SessionDep, actor: ActorDep) -> None:
    transaction(tokens.logout_all, session, user=principal.user, actor=actor)
