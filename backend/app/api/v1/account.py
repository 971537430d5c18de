"""/auth, the account flows: password recovery and reset, email verification, MFA login."""

from fastapi import APIRouter, BackgroundTasks, Response, status

from app.api.deps import ActorDep, AnonymousActor, CurrentUser, SessionDep
from app.api.errors import Responses
from app.api.v1.auth import NO_STORE, UNAUTHORIZED
from app.auth import login as login_flow
from app.auth import recovery, verification
from app.db import transaction
from app.models.account import (
    Accepted,
    MfaLoginRequest,
    PasswordRecoveryRequest,
    ResetPasswordRequest,
    VerifyEmailRequest,
)
from app.models.token import TokenPair
from app.models.user import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_TOKEN: Responses = {400: {"description": "Invalid, expired or already used token"}}
RECOVERY_ACCEPTED = "If the address belongs to an account, a password reset link is on its way."
VERIFICATION_ACCEPTED = "A verification link is on its way, unless the address is verified."


@router.post(
    "/password-recovery",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={429: {"description": "Too many requests for this email or from this client"}},
)
def password_recovery(
    body: PasswordRecoveryRequest, background: BackgroundTasks, actor: AnonymousActor
) -> Accepted:
    recovery.check_rate(body.email, actor)
    background.add_task(recovery.request_recovery, body.email, actor)
    return Accepted(message=RECOVERY_ACCEPTED)


@router.post("/reset-password", status_code=status.HTTP_204_NO_CONTENT, responses=BAD_TOKEN)
async def reset_password(
    body: ResetPasswordRequest, session: SessionDep, actor: AnonymousActor
) -> None:
    await recovery.reset_password(
        session, token=body.token, new_password=body.new_password, actor=actor
    )


@router.post("/verify-email", response_model=UserRead, responses=BAD_TOKEN)
def verify_email(body: VerifyEmailRequest, session: SessionDep, actor: AnonymousActor) -> UserRead:
    user = transaction(verification.verify_email, session, token=body.token, actor=actor)
    return UserRead.model_validate(user)


@router.post(
    "/request-verification",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={**UNAUTHORIZED, 429: {"description": "Too many requests"}},
)
async def request_verification(user: CurrentUser, session: SessionDep, actor: ActorDep) -> Accepted:
    await verification.request_verification(session, user=user, language=actor.language)
    return Accepted(message=VERIFICATION_ACCEPTED)


@router.post("/login/mfa", response_model=TokenPair, responses=UNAUTHORIZED)
def login_mfa(
    body: MfaLoginRequest, session: SessionDep, actor: AnonymousActor, response: Response
) -> TokenPair:
    response.headers.update(NO_STORE)
    return transaction(
        login_flow.login_mfa, session, mfa_token=body.mfa_token, code=body.code, actor=actor
    )
