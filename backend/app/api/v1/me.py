"""/users/me, the caller's own security settings: password, sessions, TOTP."""

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import ActorDep, CredentialPrincipal, CurrentUser, PrincipalDep, SessionDep
from app.api.errors import Responses
from app.api.v1.auth import NO_STORE, REAUTHENTICATION
from app.auth import mfa, password_change, user_sessions
from app.db import transaction
from app.models.account import (
    PasswordChangeRequest,
    PasswordConfirmation,
    RecoveryCodesRead,
    TotpCode,
    TotpDisableRequest,
    TotpSetupRead,
)
from app.models.session import SessionRead

router = APIRouter(prefix="/users/me", tags=["users"])

NOT_AUTHENTICATED: Responses = {401: {"description": "Not authenticated"}}


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_AUTHENTICATED, **REAUTHENTICATION},
)
async def change_password(
    body: PasswordChangeRequest,
    principal: CredentialPrincipal,
    session: SessionDep,
    actor: ActorDep,
) -> None:
    await password_change.change_password(
        session,
        user=principal.user,
        current_session_id=principal.session.id,
        current_password=body.current_password,
        new_password=body.new_password,
        actor=actor,
    )


@router.get("/sessions", response_model=list[SessionRead], responses=NOT_AUTHENTICATED)
def list_sessions(principal: PrincipalDep, session: SessionDep) -> list[SessionRead]:
    return transaction(
        user_sessions.list_sessions,
        session,
        user_id=principal.user.id,
        current_id=principal.session.id,
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_AUTHENTICATED, 404: {"description": "No such session of the caller"}},
)
def end_session(
    session_id: uuid.UUID, user: CurrentUser, session: SessionDep, actor: ActorDep
) -> None:
    transaction(
        user_sessions.end_session, session, user_id=user.id, session_id=session_id, actor=actor
    )


@router.post(
    "/mfa/totp",
    response_model=TotpSetupRead,
    responses={
        **NOT_AUTHENTICATED,
        **REAUTHENTICATION,
        409: {"description": "TOTP already enabled"},
    },
)
async def start_totp(
    body: PasswordConfirmation,
    principal: CredentialPrincipal,
    session: SessionDep,
    actor: ActorDep,
    response: Response,
) -> TotpSetupRead:
    response.headers.update(NO_STORE)
    user = principal.user
    setup = await mfa.begin_setup(session, user=user, password=body.password, actor=actor)
    return TotpSetupRead(secret=setup.secret, otpauth_uri=setup.otpauth_uri)


@router.post(
    "/mfa/totp/confirm",
    response_model=RecoveryCodesRead,
    responses={
        **NOT_AUTHENTICATED,
        400: {"description": "Wrong code, or no set-up in progress"},
        409: {"description": "TOTP already enabled"},
    },
)
def confirm_totp(
    body: TotpCode,
    principal: CredentialPrincipal,
    session: SessionDep,
    actor: ActorDep,
    response: Response,
) -> RecoveryCodesRead:
    response.headers.update(NO_STORE)
    codes = transaction(
        mfa.confirm_setup, session, user_id=principal.user.id, code=body.code, actor=actor
    )
    return RecoveryCodesRead(recovery_codes=codes)


@router.delete(
    "/mfa/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_AUTHENTICATED, **REAUTHENTICATION},
)
async def disable_totp(
    body: TotpDisableRequest, principal: CredentialPrincipal, session: SessionDep, actor: ActorDep
) -> None:
    user = principal.user
    await mfa.disable(session, user=user, password=body.password, code=body.code, actor=actor)
