"""Jobs, attempts, status-callback events, recordings, campaigns and the do-not-call list: the
database is the only place a job lives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from worker.domain.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; PostgreSQL's
    timestamptz hands back aware ones. Storing naive UTC and re-attaching UTC on
    the way out makes comparisons and arithmetic behave the same on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_jobs_to", "to"),
        Index("ix_jobs_campaign_status_next", "campaign_id", "status", "next_attempt_at"),
        # Newest first, a page after another (find_jobs): the API's listing.
        Index("ix_jobs_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # SHA-256 of the checked request an idempotency key was first used with.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[str | None] = mapped_column(String(64), index=True)
    to: Mapped[str] = mapped_column(String(255))
    from_: Mapped[str] = mapped_column("from", String(255))
    url: Mapped[str | None] = mapped_column(Text)
    twiml: Mapped[str | None] = mapped_column(Text)
    application_sid: Mapped[str | None] = mapped_column(String(34))
    call_options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_on: Mapped[list[Any]] = mapped_column()
    retry_delays: Mapped[list[Any]] = mapped_column()
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # The recipient's possible time zones, for a campaign's calling window.
    timezones: Mapped[list[Any] | None] = mapped_column()
    # Where the job's result is POSTed when it is final (and after each attempt, if asked).
    notify_url: Mapped[str | None] = mapped_column(Text)
    notify_each_attempt: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # The API key that made it (over HTTP): its events are signed with that key's secret.
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Loaded only where asked for (selectinload at the readers): the hot path gets a job
    # several times per call and never reads its attempts through it.
    attempt_rows: Mapped[list[Attempt]] = relationship(
        back_populates="job", order_by="Attempt.ordinal"
    )


class Campaign(Base):
    """Defaults for its jobs, its calling window, its share of the pace and its state."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    from_: Mapped[str] = mapped_column("from", String(255))
    url: Mapped[str | None] = mapped_column(Text)
    twiml: Mapped[str | None] = mapped_column(Text)
    application_sid: Mapped[str | None] = mapped_column(String(34))
    call_options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_on: Mapped[list[Any]] = mapped_column()
    retry_delays: Mapped[list[Any]] = mapped_column()
    window_start: Mapped[str] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    days: Mapped[list[Any]] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    vtime: Mapped[float] = mapped_column(Float, default=0.0)  # fair-share virtual time
    import_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Defaults for the campaign's jobs' result notifications.
    notify_url: Mapped[str | None] = mapped_column(Text)
    notify_each_attempt: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # The API key that made it (over HTTP): its events are signed with that key's secret.
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    # When the campaign may start and must stop dialing; unset means no bound.
    start_at: Mapped[datetime | None] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DoNotCall(Base):
    __tablename__ = "do_not_call"

    number: Mapped[str] = mapped_column(String(255), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    __tablename__ = "attempts"
    # AUTOINCREMENT: a released attempt's id must never come back (see migration 0003).
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_attempts_job_number"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    # The attempt's place in its job (1, 2, ...): the column is `number`.
    ordinal: Mapped[int] = mapped_column("number", Integer)
    call_sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    last_sequence: Mapped[int | None] = mapped_column(Integer)
    sip_response_code: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[int | None] = mapped_column(Integer)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    # How long answering machine detection took to answer, in milliseconds (async AMD).
    machine_detection_duration: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    recording_url: Mapped[str | None] = mapped_column(Text)
    recording_sid: Mapped[str | None] = mapped_column(String(34))
    recording_duration: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()

    job: Mapped[Job] = relationship(back_populates="attempt_rows")
    # The call's recordings, joined by CallSid: a recording whose callback came before the
    # attempt knew its CallSid joins it as soon as it does. Loaded only where asked for.
    recordings: Mapped[list[Recording]] = relationship(
        primaryjoin="foreign(Recording.call_sid) == Attempt.call_sid", viewonly=True,
        order_by="(Recording.started_at, Recording.sid)")


class Event(Base):
    """One status callback as received; the unique key absorbs repeated deliveries."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("call_sid", "sequence_number", name="uq_events_call_sid_sequence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(34))
    sequence_number: Mapped[int] = mapped_column(Integer)
    call_status: Mapped[str] = mapped_column(String(16))
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("attempts.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(16), default="callback")
    idempotency_token: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recording(Base):
    """One recording of a call, as its recording status callbacks describe it; stored once,
    its status only moving forward."""

    __tablename__ = "recordings"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), index=True)
    status: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[int | None] = mapped_column(Integer)  # seconds
    channels: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(32))
    track: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column()
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# The loader option for a job as producers see it: its attempts and their recordings, in
# two more statements whatever the number of jobs.
WITH_ATTEMPTS = selectinload(Job.attempt_rows).selectinload(Attempt.recordings)


class ApiKey(Base):
    """A producer's key for the HTTP API. Only the token's SHA-256 is stored: a stolen
    database holds no usable token, and the token is shown once, when the key is made."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The token's first characters, to tell keys apart in a listing.
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class Notification(Base):
    """One result event for a producer's notify_url, stored in the transaction that makes it
    (the outbox): the row is the source of truth for its delivery and its id is the event id
    receivers deduplicate on."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The relay's query: pending events whose next try is due.
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    # A deliver_notification message published for the row holds it until then: the relay
    # publishes it again only past this, and a delivery that takes the message clears it.
    relayed_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Signed with this API key's secret (its job's), or with DIALER_NOTIFY_SECRET when None.
    api_key_id: Mapped[str | None] = mapped_column(String(32))


class NotificationAttempt(Base):
    """One POST of a notification: what the receiver answered and how long it took."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
