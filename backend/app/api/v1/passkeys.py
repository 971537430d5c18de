"""Passkeys: the caller's own (/users/me/passkeys) and signing in with one (/auth/passkey)."""

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from app.api.deps import ActorDep, AnonymousActor, CredentialPrincipal, CurrentUser, SessionDep
from app.api.errors import Responses
from app.api.v1.auth import NO_STORE, RATE_LIMITED, REAUTHENTICATION, UNAUTHORIZED
from app.crud import passkeys as crud
from app.db import transaction
from app.models.passkey import (
    Passkey,
    PasskeyLoginRequest,
    PasskeyOptions,
    PasskeyOptionsRequest,
    PasskeyRead,
    PasskeyUpdate,
    RegistrationOptionsRequest,
    RegistrationRequest,
)
from app.models.token import MfaChallenge, TokenPair
from app.passkeys import ceremonies
from app.steps import run_transaction

router = APIRouter(tags=["passkeys"])

MINE = "/users/me/passkeys"
NOT_FOUND: Responses = {404: {"description": "No such passkey of the caller"}}


def _read(passkey: Passkey) -> PasskeyRead:
    return PasskeyRead.model_validate(passkey, from_attributes=True)


@router.post(
    f"{MINE}/registration/options",
    responses={**UNAUTHORIZED, **REAUTHENTICATION},
)
async def registration_options(
    body: RegistrationOptionsRequest,
    principal: CredentialPrincipal,
    session: SessionDep,
    actor: ActorDep,
    response: Response,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create()."""
    response.headers.update(NO_STORE)
    return await ceremonies.begin_registration(
        session,
        user=principal.user,
        auth_session=principal.session,
        password=body.password,
        actor=actor,
    )


@router.post(
    f"{MINE}/registration",
    status_code=status.HTTP_201_CREATED,
    responses={**UNAUTHORIZED, 400: {"description": "The registration does not verify"}},
)
def register(
    body: RegistrationRequest, principal: CredentialPrincipal, session: SessionDep, actor: ActorDep
) -> PasskeyRead:
    return _read(
        transaction(
            ceremonies.register,
            session,
            user=principal.user,
            credential=body.credential,
            name=body.name,
            actor=actor,
        )
    )


@router.get(MINE, responses=UNAUTHORIZED)
def list_passkeys(user: CurrentUser, session: SessionDep) -> list[PasskeyRead]:
    rows = transaction(crud.of_user, session, user.id)
    return [_read(row) for row in rows]


@router.patch(f"{MINE}/{{passkey_id}}", responses={**UNAUTHORIZED, **NOT_FOUND})
def rename_passkey(
    passkey_id: uuid.UUID, body: PasskeyUpdate, principal: CredentialPrincipal, session: SessionDep
) -> PasskeyRead:
    user_id = principal.user.id
    return _read(
        transaction(
            ceremonies.rename, session, user_id=user_id, passkey_id=passkey_id, name=body.name
        )
    )


@router.delete(
    f"{MINE}/{{passkey_id}}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**UNAUTHORIZED, **NOT_FOUND},
)
def delete_passkey(
    passkey_id: uuid.UUID, principal: CredentialPrincipal, session: SessionDep, actor: ActorDep
) -> None:
    transaction(
        ceremonies.delete, session, user_id=principal.user.id, passkey_id=passkey_id, actor=actor
    )


@router.post("/auth/passkey/options", responses=RATE_LIMITED)
async def login_options(
    body: PasskeyOptionsRequest, session: SessionDep, actor: AnonymousActor, response: Response
) -> PasskeyOptions:
    """A sign-in's `flow_id` and PublicKeyCredentialRequestOptionsJSON."""
    response.headers.update(NO_STORE)
    return await run_transaction(ceremonies.login_options, session, email=body.email, actor=actor)


@router.post(
    "/auth/passkey/login",
    response_model=TokenPair | MfaChallenge,
    responses={**UNAUTHORIZED, **RATE_LIMITED, 403: {"description": "Inactive or unverified"}},
)
def passkey_login(
    body: PasskeyLoginRequest, session: SessionDep, actor: AnonymousActor, response: Response
) -> TokenPair | MfaChallenge:
    response.headers.update(NO_STORE)
    result: TokenPair | MfaChallenge = transaction(
        ceremonies.login, session, flow_id=body.flow_id, credential=body.credential, actor=actor
    )
    return result
