"""Schemathesis hooks for the fuzz run (SCHEMATHESIS_HOOKS=tests.utils.fuzz_hooks).

Every request carries the access token of a live admin session, opened directly in the
database the server uses (the same settings, the same SECRET_KEY). The fuzzer acts as an
admin and may change that admin's password or email, end its session or log it out; a token
that stops working is replaced (schemathesis refetches on a 401), so the rest of the run stays
authenticated.
"""

from typing import Any

import schemathesis
from sqlmodel import Session, col, select

from app.auth.tokens import start_session
from app.core.permissions import Role
from app.crud.audit import Actor
from app.db import get_engine
from app.models.user import User

FUZZ_ACTOR = Actor(user_agent="schemathesis")


@schemathesis.auth(refresh_interval=5)
class AdminSession:
    def get(self, _case: Any, _ctx: Any) -> str:
        with Session(get_engine(), expire_on_commit=False) as session:
            admin = session.exec(
                select(User)
                .where(col(User.role) == Role.ADMIN, col(User.is_active).is_(True))
                .order_by(col(User.created_at))
            ).first()
            if admin is None:  # the service never lets the last active admin go
                raise RuntimeError("no active admin left in the database")
            pair = start_session(session, user=admin, actor=FUZZ_ACTOR)
            session.commit()
        return pair.access_token

    def set(self, case: Any, data: str, _ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
