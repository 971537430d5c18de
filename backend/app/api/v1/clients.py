"""/clients: the OAuth client registry (admins: `clients:manage`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session

from app.api.deps import ActorDep, SessionDep, require
from app.core.permissions import Permission
from app.crud import clients
from app.crud.audit import Actor
from app.db import transaction
from app.models.client import ClientCreate, ClientCreated, ClientRead, ClientUpdate
from app.models.common import Page
from app.steps import run_transaction

router = APIRouter(
    prefix="/clients",
    tags=["clients"],
    dependencies=[Depends(require(Permission.CLIENTS_MANAGE))],
    responses={
        401: {"description": "Missing, invalid or revoked credentials"},
        403: {"description": "Not an admin"},
        404: {"description": "No such client"},
    },
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientCreated)
def create_client(body: ClientCreate, session: SessionDep, actor: ActorDep) -> ClientCreated:
    """Register a client; a confidential client's secret is in this answer only."""
    return transaction(clients.create_client, session, body=body, actor=actor)


@router.get("", response_model=Page[ClientRead])
def list_clients(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[ClientRead]:
    items, total = clients.list_clients(session, skip=skip, limit=limit)
    return Page(items=items, total=total, skip=skip, limit=limit)


@router.get("/{client_id}", response_model=ClientRead)
def get_client(client_id: str, session: SessionDep) -> ClientRead:
    return clients.client_read(clients.require_client(session, client_id))


@router.patch("/{client_id}", response_model=ClientRead)
def update_client(
    client_id: str, body: ClientUpdate, session: SessionDep, actor: ActorDep
) -> ClientRead:
    return transaction(_update_client, session, client_id, body, actor)


def _update_client(
    session: Session, client_id: str, body: ClientUpdate, actor: Actor
) -> ClientRead:
    client = clients.require_client(session, client_id)
    return clients.update_client(session, client=client, body=body, actor=actor)


@router.post("/{client_id}/secret", response_model=ClientCreated)
def rotate_secret(client_id: str, session: SessionDep, actor: ActorDep) -> ClientCreated:
    """A new secret (shown once); the old one stops working at once."""
    return transaction(_rotate_secret, session, client_id, actor)


def _rotate_secret(session: Session, client_id: str, actor: Actor) -> ClientCreated:
    client = clients.require_client(session, client_id)
    return clients.rotate_secret(session, client=client, actor=actor)


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(client_id: str, session: SessionDep, actor: ActorDep) -> None:
    """Delete the client and end every session and token issued to it."""
    await run_transaction(_delete_client, session, client_id, actor)


def _delete_client(session: Session, client_id: str, actor: Actor) -> None:
    client = clients.require_client(session, client_id)
    clients.delete_client(session, client=client, actor=actor)
