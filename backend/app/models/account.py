"""Bodies and answers of the account flows: recovery, verification, password change, MFA."""

from typing import Annotated

from pydantic import BaseModel, Field

from app.models.user import Email, NewPassword

MAX_MAILED_TOKEN = 512
MailedToken = Annotated[str, Field(min_length=1, max_length=MAX_MAILED_TOKEN)]
CurrentPassword = Annotated[str, Field(min_length=1, max_length=4096)]
OneTimeCode = Annotated[str, Field(min_length=1, max_length=64)]


class Accepted(BaseModel):
    """A 202 answer: the work (a mail) happens after it."""

    message: str


class PasswordRecoveryRequest(BaseModel):
    email: Email = Field(max_length=320)


class ResetPasswordRequest(BaseModel):
    token: MailedToken
    new_password: NewPassword


class VerifyEmailRequest(BaseModel):
    token: MailedToken


class PasswordChangeRequest(BaseModel):
    current_password: CurrentPassword
    new_password: NewPassword


class PasswordConfirmation(BaseModel):
    password: CurrentPassword


class TotpSetupRead(BaseModel):
    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    code: OneTimeCode


class TotpDisableRequest(BaseModel):
    password: CurrentPassword
    code: OneTimeCode


class RecoveryCodesRead(BaseModel):
    recovery_codes: list[str]


class MfaLoginRequest(BaseModel):
    mfa_token: Annotated[str, Field(min_length=1, max_length=4096)]
    code: OneTimeCode
