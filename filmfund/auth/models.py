from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import code_point_string, derived_default, keep_derived, new_id, str_enum, utcnow
from filmfund.extensions import db
from filmfund.typed import SEARCH_KEY_MAX, search_key


class Role(enum.StrEnum):
    DONOR = "donor"
    PRODUCER = "producer"
    PARTNER = "partner"


STAFF_ROLES = (Role.PRODUCER.value, Role.PARTNER.value)


class User(db.Model):
    """Anyone who signs in. A donor is made from a payment's email; staff by the CLI."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_id)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    # The address as the producers' donor search finds it (typed.search_key), kept with every write
    # of the email: at an insert (ORM or Core) by its default, at an assignment by keep_derived.
    email_key: Mapped[str | None] = mapped_column(code_point_string(SEARCH_KEY_MAX),
                                                  default=derived_default("email", search_key))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    # Bumped on logout, a password change, a staff role given or any role taken, a second factor
    # reset: a copied session cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # TOTP second factor (staff): the base32 secret, set at enrolment and confirmed by a first code;
    # the last time step accepted (a code is never accepted twice).
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    roles: Mapped[list[UserRole]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                 lazy="selectin")

    # Flask-Login protocol
    is_active = True
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    def get_id(self) -> str:
        return f"{self.public_id}:{self.session_version}"

    @property
    def role_names(self) -> set[str]:
        return {r.role.value for r in self.roles}

    def has_role(self, *names: str) -> bool:
        return bool(self.role_names & set(names))

    @property
    def is_staff(self) -> bool:
        return self.has_role(*STAFF_ROLES)

    @property
    def has_totp(self) -> bool:
        return bool(self.totp_secret and self.totp_confirmed_at)


# find_user() matches emails case-insensitively: this index serves lower(email) = ...
sa.Index("ix_users_email_lower", sa.func.lower(User.email))
# The producers' donor search (rewards/donations.py): a prefix range on the folded address.
sa.Index("ix_users_email_key", User.email_key)
keep_derived(User.email, "email_key", search_key)


class UserRole(db.Model):
    __tablename__ = "user_roles"
    __table_args__ = (sa.UniqueConstraint("user_id", "role", name="uq_user_roles_user_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    user: Mapped[User] = relationship(back_populates="roles")


class ApiToken(db.Model):
    """An API token, stored as its SHA-256 (the token itself is shown once, at creation)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]  # NULL only on rows older than expiry, which the migration filled
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user: Mapped[User] = relationship()


class LoginLink(db.Model):
    """A single-use, short-lived link mailed to a user, stored hashed: a donor's sign-in link
    (purpose `sign_in`) or a staff member's password reset (purpose `reset`)."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(16), default="sign_in", server_default="sign_in")
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    user: Mapped[User] = relationship()
