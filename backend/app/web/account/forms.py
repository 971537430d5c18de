"""Reading an account page's form into the API's own body models (the same rules as the
JSON API), and a field's problem as a message the page shows beside it."""

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.core.config import get_settings
from app.core.password_policy import PasswordRule, problem
from app.core.passwords import max_password_bytes
from app.web.account import messages
from app.web.account.messages import Message
from app.web.flow import field

Model = TypeVar("Model", bound=BaseModel)
Problems = dict[str, Message]

NEW_PASSWORDS = ("password", "new_password")
NAME_MAX = 255


def values(form: FormData, *names: str) -> dict[str, str]:
    return {name: field(form, name) for name in names}


def validated(
    model: type[Model], data: Mapping[str, object], *, names: Mapping[str, str] | None = None
) -> Model | Problems:
    """`data` as `model` (its validation is the API's), or each field's problem. `names`
    maps a model field to its form field where they differ."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        found: Problems = {}
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else ""
            shown = (names or {}).get(name, name)
            if shown not in found:
                found[shown] = problem_of(shown, data.get(name), data)
        return found


def problem_of(name: str, value: object, data: Mapping[str, Any] | None = None) -> Message:
    text = value if isinstance(value, str) else ""
    if name in NEW_PASSWORDS:
        person = {key: (data or {}).get(key) for key in ("email", "full_name")}
        found = new_password_problem(
            text,
            email=person["email"] if isinstance(person["email"], str) else None,
            full_name=person["full_name"] if isinstance(person["full_name"], str) else None,
        )
        return found or Message(messages.INVALID_VALUE)
    if name == "email":
        return Message(messages.INVALID_EMAIL)
    if name == "full_name":
        return Message(messages.NAME_INVALID, {"maximum": NAME_MAX})
    if name == "current_password":
        return Message(messages.ENTER_PASSWORD)
    return Message(messages.INVALID_VALUE)


def new_password_problem(
    password: str, *, email: str | None = None, full_name: str | None = None
) -> Message | None:
    """Why the password policy refuses `password` (core/password_policy.py; without `email`
    and `full_name`, the rules that need no account: the step checks the others), said in
    the page's words."""
    found = problem(password, email=email, full_name=full_name)
    if found is None:
        return None
    if found.rule is PasswordRule.TOO_SHORT:
        return Message(messages.PASSWORD_TOO_SHORT, {"minimum": get_settings().PASSWORD_MIN_LENGTH})
    if found.rule is PasswordRule.NUL:
        return Message(messages.PASSWORD_NUL)
    if found.rule is PasswordRule.TOO_LONG:
        return Message(messages.PASSWORD_TOO_LONG, {"maximum": max_password_bytes()})
    return Message(found.message)


def too_many(retry_after: int) -> Message:
    return Message(messages.TOO_MANY, {"minutes": max(1, -(-retry_after // 60))})
