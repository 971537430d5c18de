"""Every table model, imported so that `SQLModel.metadata` knows them all."""

from app.models.action_token import ActionToken, RecoveryCode, TokenPurpose
from app.models.audit import AuditEvent
from app.models.authz import (
    ApiPermission,
    ApiResource,
    ClientRole,
    ProductRole,
    RolePermission,
    UserRole,
)
from app.models.client import AuthorizationCode, ClientToken, OAuthClient, OAuthConsent
from app.models.client_version import ClientsVersion
from app.models.lockout import LoginFailure
from app.models.organization import Membership, MembershipRole, Organization
from app.models.passkey import Passkey, WebAuthnChallenge
from app.models.session import AuthSession
from app.models.signing_key import SigningKeyRow
from app.models.user import User

__all__ = [
    "ActionToken",
    "ApiPermission",
    "ApiResource",
    "AuditEvent",
    "AuthSession",
    "AuthorizationCode",
    "ClientRole",
    "ClientToken",
    "ClientsVersion",
    "LoginFailure",
    "Membership",
    "MembershipRole",
    "OAuthClient",
    "OAuthConsent",
    "Organization",
    "Passkey",
    "ProductRole",
    "RecoveryCode",
    "RolePermission",
    "SigningKeyRow",
    "TokenPurpose",
    "User",
    "UserRole",
    "WebAuthnChallenge",
]
