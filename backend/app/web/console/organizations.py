"""The console's organizations (admins: authz:manage): the list and a form to create one; each
organization's page with its members and their roles (add or update one by email, remove),
its pending invitations (send, mailed once committed; revoke) and its deletion, through the
steps of crud/organizations.py and crud/invitations.py, acting as an admin."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from app.api.deps import SessionDep
from app.auth import mails
from app.core import mail
from app.core.permissions import Permission
from app.crud import invitations, organizations, users
from app.crud.audit import Actor
from app.crud.organizations import Delegate
from app.db import transaction
from app.errors import BadRequest, DomainError, NotFound
from app.models.authz import RoleRead
from app.models.organization import (
    INVITATION_DAYS,
    InvitationCreate,
    InvitationRead,
    MemberRead,
    OrganizationCreate,
    OrganizationRead,
)
from app.web.console.access import Console, ConsoleDep, PostDep, need, refused, render
from app.web.console.authz_forms import (
    PAGE_SIZE,
    first_problem,
    keyset,
    page_link,
    role_choices,
    role_ids,
)
from app.web.console.paging import KeysetWindow

router = APIRouter(prefix="/admin")

MAX_REF = 64
MAX_EMAIL = 320
LABELS = {"name": "Name", "slug": "Slug", "email": "Email", "roles": "Roles"}
DONE = {
    "created": "Organization created.",
    "member": "Member saved.",
    "removed": "Member removed: their sessions bound to this organization have ended.",
    "invited": "Invitation sent.",
    "revoked": "Invitation revoked: its link no longer works.",
    "deleted": "Organization deleted, with its memberships and invitations.",
}


def _admin(console: Console) -> Delegate:
    return Delegate(user_id=console.user.id, admin=True)


# --- the list ------------------------------------------------------------------------------


def _window(session: Session, cursor: str, back: str) -> KeysetWindow[OrganizationRead]:
    return keyset(
        cursor, back, lambda after: organizations.list_page(session, limit=PAGE_SIZE, after=after)
    )


def _list_page(
    request: Request,
    session: SessionDep,
    console: Console,
    *,
    cursor: str = "",
    back: str = "",
    alert: str | None = None,
    status: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        page = transaction(_window, session, cursor, back)
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None
    return render(
        request,
        "organizations.html",
        console=console,
        status_code=status_code,
        page=page,
        next_url=page_link("/admin/organizations", page.next_query),
        previous_url=page_link("/admin/organizations", page.previous_query),
        alert=alert,
        status=status,
        form=form or {},
    )


@router.get("/organizations")
def organizations_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    cursor: str = "",
    back: str = "",
    done: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    return _list_page(request, session, console, cursor=cursor, back=back, status=DONE.get(done))


@router.post("/organizations")
def create_organization(
    request: Request,
    session: SessionDep,
    console: PostDep,
    name: Annotated[str, Form()] = "",
    slug: Annotated[str, Form()] = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    form = {"name": name[:200], "slug": slug[:63]}
    try:
        body = OrganizationCreate.model_validate(
            {"name": name.strip(), "slug": slug.strip() or None}
        )
        created = transaction(
            organizations.create, session, body=body, actor=console.actor(request)
        )
    except ValidationError as error:
        alert = first_problem(error, LABELS, "Organization")
        return _list_page(request, session, console, alert=alert, form=form, status_code=422)
    except DomainError as error:
        return _list_page(
            request, session, console, alert=error.detail, form=form, status_code=error.status
        )
    return RedirectResponse(f"/admin/organizations/{created.id}?done=created", status_code=303)


# --- one organization ----------------------------------------------------------------------


def _organization(
    request: Request, session: SessionDep, console: Console, ref: str
) -> OrganizationRead:
    try:
        return transaction(organizations.read, session, ref[:MAX_REF])
    except NotFound:
        raise refused(request, "No such organization.", console=console, status_code=404) from None


def _contents(
    session: Session, organization_id: uuid.UUID, delegate: Delegate, cursor: str, back: str
) -> tuple[KeysetWindow[MemberRead], list[InvitationRead], int, list[RoleRead]]:
    """A page of members, the first pending invitations (and their number), the roles."""
    members = keyset(
        cursor,
        back,
        lambda after: organizations.members_page(
            session, organization_id=organization_id, limit=PAGE_SIZE, after=after
        ),
    )
    pending = invitations.pending(
        session,
        ref=str(organization_id),
        delegate=delegate,
        limit=PAGE_SIZE * 4,
        after=None,
    )
    return members, pending.items, pending.total, role_choices(session)


def _detail(
    request: Request,
    session: SessionDep,
    console: Console,
    organization: OrganizationRead,
    *,
    cursor: str = "",
    back: str = "",
    alert: str | None = None,
    status: str | None = None,
    member_form: dict[str, Any] | None = None,
    invite_form: dict[str, Any] | None = None,
    edit: str = "",
    confirm_delete: bool = False,
    status_code: int = 200,
) -> Response:
    try:
        members, pending, pending_total, roles = transaction(
            _contents, session, organization.id, _admin(console), cursor, back
        )
    except BadRequest as error:
        raise refused(request, error.detail, console=console, status_code=400) from None
    here = f"/admin/organizations/{organization.id}"
    if member_form is None:
        editing = next((m for m in members.items if str(m.user_id) == edit), None)
        member_form = {
            "email": editing.email if editing else "",
            "roles": {str(role.id) for role in editing.roles} if editing else set(),
        }
    return render(
        request,
        "organization.html",
        console=console,
        status_code=status_code,
        organization=organization,
        members=members,
        next_url=page_link(here, members.next_query),
        previous_url=page_link(here, members.previous_query),
        invitations=pending,
        invitations_total=pending_total,
        roles=roles,
        member_form=member_form,
        invite_form=invite_form or {"email": "", "roles": set()},
        alert=alert,
        status=status,
        confirm_delete=confirm_delete,
    )


@router.get("/organizations/{ref}")
def organization_page(
    request: Request,
    session: SessionDep,
    console: ConsoleDep,
    ref: str,
    cursor: str = "",
    back: str = "",
    member: str = "",
    done: str = "",
    confirm: str = "",
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    return _detail(
        request,
        session,
        console,
        organization,
        cursor=cursor,
        back=back,
        edit=member[:40],
        status=DONE.get(done),
        confirm_delete=confirm == "delete",
    )


def _done(organization: OrganizationRead, what: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/organizations/{organization.id}?done={what}", status_code=303)


@router.post("/organizations/{ref}/members")
def put_member(
    request: Request,
    session: SessionDep,
    console: PostDep,
    ref: str,
    email: Annotated[str, Form()] = "",
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Add the user with this email as a member with the checked roles, or replace a
    member's roles there."""
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    form = {"email": email[:MAX_EMAIL], "roles": set(role or [])}
    try:
        transaction(
            _put_by_email,
            session,
            ref=str(organization.id),
            email=email.strip()[:MAX_EMAIL],
            role_ids=role_ids(role),
            delegate=_admin(console),
            actor=console.actor(request),
        )
    except DomainError as error:
        return _detail(
            request,
            session,
            console,
            organization,
            alert=error.detail,
            member_form=form,
            status_code=error.status,
        )
    return _done(organization, "member")


def _put_by_email(
    session: Session,
    *,
    ref: str,
    email: str,
    role_ids: list[uuid.UUID],
    delegate: Delegate,
    actor: Actor,
) -> MemberRead:
    person = users.get_user_by_email(session, email)
    if person is None:
        raise NotFound("No user has this email address: invite them instead.")
    return organizations.put_member(
        session, ref=ref, user_id=person.id, role_ids=role_ids, delegate=delegate, actor=actor
    )


@router.post("/organizations/{ref}/members/{user_id}/remove")
def remove_member(
    request: Request, session: SessionDep, console: PostDep, ref: str, user_id: str
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    try:
        transaction(
            organizations.delete_member,
            session,
            ref=str(organization.id),
            user_id=uuid.UUID(user_id),
            delegate=_admin(console),
            actor=console.actor(request),
        )
    except ValueError:
        alert = "Not a member (removed already?)."
        return _detail(request, session, console, organization, alert=alert, status_code=404)
    except DomainError as error:
        alert = "Not a member (removed already?)." if error.status == 404 else error.detail
        return _detail(
            request, session, console, organization, alert=alert, status_code=error.status
        )
    return _done(organization, "removed")


@router.post("/organizations/{ref}/invitations")
def invite(
    request: Request,
    session: SessionDep,
    console: PostDep,
    ref: str,
    email: Annotated[str, Form()] = "",
    role: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Invite an address with the checked roles; the link is mailed once committed."""
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    form = {"email": email[:MAX_EMAIL], "roles": set(role or [])}
    try:
        body = InvitationCreate.model_validate(
            {"email": email.strip()[:MAX_EMAIL], "roles": role_ids(role)}
        )
        sent = transaction(
            invitations.invite,
            session,
            ref=str(organization.id),
            body=body,
            delegate=_admin(console),
            actor=console.actor(request),
        )
    except ValidationError as error:
        alert = first_problem(error, LABELS, "Invitation")
        return _detail(
            request,
            session,
            console,
            organization,
            alert=alert,
            invite_form=form,
            status_code=422,
        )
    except DomainError as error:
        return _detail(
            request,
            session,
            console,
            organization,
            alert=error.detail,
            invite_form=form,
            status_code=error.status,
        )
    mail.send(  # in the admin's browser's language (the console itself stays English)
        mails.invitation(
            body.email,
            sent.token,
            organization=sent.organization,
            days=INVITATION_DAYS,
            locale=mails.mail_locale(console.actor(request).language),
        )
    )
    return _done(organization, "invited")


@router.post("/organizations/{ref}/invitations/{invitation_id}/revoke")
def revoke_invitation(
    request: Request, session: SessionDep, console: PostDep, ref: str, invitation_id: str
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    try:
        transaction(
            invitations.revoke,
            session,
            ref=str(organization.id),
            invitation_id=uuid.UUID(invitation_id),
            delegate=_admin(console),
            actor=console.actor(request),
        )
    except (ValueError, NotFound):
        alert = "This invitation is no longer pending."
        return _detail(request, session, console, organization, alert=alert, status_code=404)
    return _done(organization, "revoked")


@router.post("/organizations/{ref}/delete")
def delete_organization(
    request: Request, session: SessionDep, console: PostDep, ref: str
) -> Response:
    need(request, console, console.can(Permission.AUTHZ_MANAGE))
    organization = _organization(request, session, console, ref)
    try:
        transaction(
            organizations.delete_one,
            session,
            ref=str(organization.id),
            actor=console.actor(request),
        )
    except NotFound:
        raise refused(request, "No such organization.", console=console, status_code=404) from None
    return RedirectResponse("/admin/organizations?done=deleted", status_code=303)
