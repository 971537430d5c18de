"""The OpenID Connect signing keys `manage keys rotate` stages: one table every instance
reads (core/keys.py), so that all of them agree on which key signs and which verify."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.common import UTCDateTime, created_at_field


class SigningKeyRow(SQLModel, table=True):
    """A key's private half is stored encrypted under SECRET_KEY (core/crypto.py), never in
    plain text. Its state (next, active, retired) follows from `activates_at` and the next
    key's: nothing is written when a key activates or retires."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)  # the RFC 7638 thumbprint
    algorithm: str = Field(max_length=8)  # RS256 or ES256
    private_key: str = Field(sa_type=sa.Text)  # PKCS#8 PEM, Fernet-encrypted
    created_at: datetime = created_at_field()
    activates_at: datetime = Field(sa_type=UTCDateTime)  # signs from then; published at once
