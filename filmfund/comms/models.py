"""Tables of filmfund.comms: production updates and their per-recipient deliveries."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import str_enum, utcnow
from filmfund.extensions import db


class UpdateState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"              # waiting for a worker (or for its next try)
    SENDING = "sending"            # claimed by one worker: nobody else sends it
    SENT = "sent"                  # the mail server took it
    FAILED = "failed"              # every try failed, or a worker died while sending (never re-sent)
    UNSUBSCRIBED = "unsubscribed"  # in the audience, but opted out of this topic
    CANCELLED = "cancelled"        # left the audience (a refund) before it went out


class Update(db.Model):
    """A production update, written in Markdown. Its audience is `everyone`, `donors`, or the
    key of a reward (its holders). Drafts are the producers' alone; publishing is final."""

    __tablename__ = "updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    # The same update in the site's other languages, as its producers wrote it (never machine-made):
    # {"zh-Hans": {"title": ..., "body": ...}}. Each reader gets their own (updates.version).
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default="{}")
    audience: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[UpdateState] = mapped_column(str_enum(UpdateState, 16), default=UpdateState.DRAFT, index=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    published_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class UpdateDelivery(db.Model):
    """One recipient of one published update: the row is made once (unique) when the update is
    published, and claimed atomically (queued -> sending) before its mail goes out, so no donor
    ever gets the same update twice."""

    __tablename__ = "update_deliveries"
    __table_args__ = (sa.UniqueConstraint("update_id", "user_id", name="uq_update_deliveries_update_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(sa.ForeignKey("updates.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, 16), default=DeliveryStatus.QUEUED,
                                                   index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))

    user = relationship("User")


# --- questions to the interview subjects ($250) --------------------------------------------

class QuestionState(enum.StrEnum):
    SUBMITTED = "submitted"    # waiting for moderation
    APPROVED = "approved"      # accepted, not yet given to a subject
    REJECTED = "rejected"      # refused by the producers (the donor sees why)
    ASSIGNED = "assigned"      # a subject will answer it
    ANSWERED = "answered"      # answer and translation final: the donor was told and can read it


class TextStatus(enum.StrEnum):
    MISSING = "missing"
    DRAFT = "draft"
    FINAL = "final"


def _text_status(name: str) -> sa.Enum:
    """TextStatus for one column: each column needs its own CHECK constraint name."""
    return sa.Enum(TextStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e],
                   validate_strings=True, create_constraint=True, name=name)


class InterviewSubject(db.Model):
    __tablename__ = "interview_subjects"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(35))       # BCP 47, e.g. "zh", "yue"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Question(db.Model):
    """A donor's question. The answer is recorded as text and/or a clip, in the subject's
    language and in English, each text with its own status."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[QuestionState] = mapped_column(str_enum(QuestionState, 16), default=QuestionState.SUBMITTED,
                                                 index=True)
    moderation_note: Mapped[str] = mapped_column(sa.String(500), default="")
    subject_id: Mapped[int | None] = mapped_column(sa.ForeignKey("interview_subjects.id", ondelete="SET NULL"))
    answer_language: Mapped[str | None] = mapped_column(sa.String(35))
    answer_original: Mapped[str] = mapped_column(sa.Text, default="")
    original_status: Mapped[TextStatus] = mapped_column(_text_status("original_status"), default=TextStatus.MISSING)
    answer_english: Mapped[str] = mapped_column(sa.Text, default="")
    english_status: Mapped[TextStatus] = mapped_column(_text_status("english_status"), default=TextStatus.MISSING)
    answer_asset_id: Mapped[int | None] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    moderated_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    notified_at: Mapped[datetime | None]

    user = relationship("User")
    subject: Mapped[InterviewSubject | None] = relationship()
    answer_asset = relationship("Asset")


# --- experiences as invitations ($500 dinner, $750 video chat, $1000 commentary) -----------

class RsvpStatus(enum.StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Experience(db.Model):
    """An experience a reward entitles to (its key), offered at a few proposed times."""

    __tablename__ = "experiences"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    reward_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    details: Mapped[str] = mapped_column(sa.Text, default="")
    location: Mapped[str] = mapped_column(sa.String(300), default="")
    # Its texts in the site's other languages, as the producers wrote them:
    # {"zh-Hans": {"title", "details", "location"}} (invitations.text reads them).
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default="{}")
    duration_minutes: Mapped[int] = mapped_column(default=60)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    slots: Mapped[list[ExperienceSlot]] = relationship(back_populates="experience", order_by="ExperienceSlot.starts_at",
                                                       cascade="all, delete-orphan", lazy="selectin")


class ExperienceSlot(db.Model):
    __tablename__ = "experience_slots"
    __table_args__ = (sa.CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experience_id: Mapped[int] = mapped_column(sa.ForeignKey("experiences.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    capacity: Mapped[int | None]      # None: no limit

    experience: Mapped[Experience] = relationship(back_populates="slots")


class Invitation(db.Model):
    """One donor's invitation to one experience: made when they first see it (or when the
    producers send the invitations), with their answer and chosen time."""

    __tablename__ = "invitations"
    __table_args__ = (sa.UniqueConstraint("experience_id", "user_id", name="uq_invitations_experience_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experience_id: Mapped[int] = mapped_column(sa.ForeignKey("experiences.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[RsvpStatus] = mapped_column(str_enum(RsvpStatus, 16), default=RsvpStatus.INVITED)
    slot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("experience_slots.id", ondelete="SET NULL"), index=True)
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    responded_at: Mapped[datetime | None]
    invited_at: Mapped[datetime | None]           # the invitation mail went out
    rsvp_reminded_at: Mapped[datetime | None]     # "please answer" reminder went out
    reminded_at: Mapped[datetime | None]          # "it is tomorrow" reminder went out

    experience: Mapped[Experience] = relationship(lazy="joined")
    slot: Mapped[ExperienceSlot | None] = relationship(lazy="joined")
    user = relationship("User")


# --- the $2000 tier's private request thread ---------------------------------------------

class RequestMessage(db.Model):
    """A message in the private thread between one donor and the producers."""

    __tablename__ = "request_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    donor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    from_producers: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
