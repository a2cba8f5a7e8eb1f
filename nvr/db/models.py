"""SQLAlchemy 2 models: the index of the segment store and the persistent ONVIF objects.

Times are integers everywhere: media and event times are microseconds since the Unix epoch
(UTC, column suffix ``_us``); frame durations are in the track's RTP clock units. The models
work unchanged on PostgreSQL and SQLite; alembic migrations in ``migrations/`` create them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TOKEN_LEN = 64
"""tt:ReferenceToken max length; tokens we generate are <= 36 characters."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StorageDir(Base):
    """A directory holding media files, tied to this database by an identity file."""

    __tablename__ = "storage_dirs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    min_free_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_us: Mapped[int] = mapped_column(BigInteger)


class Recording(Base):
    """An ONVIF recording: a logical container of tracks, usually one per camera."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LEN), unique=True)
    source_id: Mapped[str] = mapped_column(String(1024), default="")
    source_name: Mapped[str] = mapped_column(String(256), default="")
    source_location: Mapped[str] = mapped_column(String(1024), default="")
    source_description: Mapped[str] = mapped_column(String(1024), default="")
    source_address: Mapped[str] = mapped_column(String(1024), default="")
    content: Mapped[str] = mapped_column(String(1024), default="")
    max_retention_us: Mapped[int] = mapped_column(BigInteger, default=0)
    """MaximumRetentionTime; 0 = limited by disk space only."""
    created_us: Mapped[int] = mapped_column(BigInteger)
    tracks: Mapped[list[Track]] = relationship(
        back_populates="recording", cascade="all, delete-orphan", passive_deletes=True
    )


class Track(Base):
    """One infinite timeline of one media type inside a recording."""

    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("recording_id", "token"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(TOKEN_LEN))
    kind: Mapped[str] = mapped_column(String(16))
    """tt:TrackType: Video, Audio, Metadata or Extended."""
    description: Mapped[str] = mapped_column(String(1024), default="")
    created_us: Mapped[int] = mapped_column(BigInteger)
    recording: Mapped[Recording] = relationship(back_populates="tracks")


class SampleEntry(Base):
    """Codec parameters shared by the segments that use them (deduplicated by digest)."""

    __tablename__ = "sample_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    codec: Mapped[str] = mapped_column(String(32))
    """H264, H265, JPEG, AAC, PCMU, PCMA or ONVIF-METADATA."""
    clock_rate: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    parameters: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    """Codec configuration: length-prefixed parameter-set NAL units, or AudioSpecificConfig."""
    created_us: Mapped[int] = mapped_column(BigInteger)


class Run(Base):
    """Consecutive segments of one track without a gap; the gaps lie between runs."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_track_start", "track_id", "start_us"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    open: Mapped[bool] = mapped_column(Boolean, default=True)


class Segment(Base):
    """One media file of one track: concatenated access units, cut at a key frame."""

    __tablename__ = "segments"
    __table_args__ = (
        Index("ix_segments_track_start", "track_id", "start_us"),
        Index("ix_segments_track_end", "track_id", "end_us"),
        Index("ix_segments_run_start", "run_id", "start_us"),
        Index("ix_segments_dir_start", "storage_dir_id", "start_us"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    sample_entry_id: Mapped[int] = mapped_column(ForeignKey("sample_entries.id"))
    storage_dir_id: Mapped[int] = mapped_column(ForeignKey("storage_dirs.id"))
    path: Mapped[str] = mapped_column(String(512))
    """File path relative to the storage directory."""
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    clock_rate: Mapped[int] = mapped_column(Integer)
    duration: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of frame durations, in clock units."""
    frames: Mapped[int] = mapped_column(Integer, default=0)
    key_frames: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    """Indexed length of the file: everything below this offset is covered by the frame index."""
    sha256: Mapped[str | None] = mapped_column(String(64))
    """Checksum of the first ``bytes`` bytes, set when the segment is closed."""
    open: Mapped[bool] = mapped_column(Boolean, default=True)


class SegmentFrames(Base):
    """The per-frame index of a segment, kept apart so listings never read blobs."""

    __tablename__ = "segment_frames"
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class Hold(Base):
    """A time range retention must not delete (an export in progress, an operator hold)."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_recording", "recording_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(256), default="")
    created_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int | None] = mapped_column(BigInteger)


class Garbage(Base):
    """A file to delete; deletions go through this list so a crash mid-delete is finished."""

    __tablename__ = "garbage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    storage_dir_id: Mapped[int] = mapped_column(ForeignKey("storage_dirs.id"))
    path: Mapped[str] = mapped_column(String(512))
    created_us: Mapped[int] = mapped_column(BigInteger)


class EventTopic(Base):
    """A topic seen in the event index: events refer to it by id, so rows and indexes stay
    small and a topic filter becomes a short list of ids (the table holds tens of rows)."""

    __tablename__ = "event_topics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(512), unique=True)
    """``tns1:Root/Child`` for ONVIF topics; other namespaces keep the producer's prefix."""
    is_property: Mapped[bool] = mapped_column(Boolean, default=False)
    """Property events were seen: a candidate for virtual start-state events."""


class Event(Base):
    """The recording-event index searched by FindEvents (history and metadata events).

    Every index ends in ``id`` so pages are keyset-paginated on ``(time_us, id)``: globally,
    per recording or per topic (nvr/search/queries.py picks one), and per track for deletes.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_time_id", "time_us", "id"),
        Index("ix_events_recording_time_id", "recording_id", "time_us", "id"),
        Index("ix_events_topic_time_id", "topic_id", "time_us", "id"),
        Index("ix_events_track_time", "track_id", "time_us"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    time_us: Mapped[int] = mapped_column(BigInteger)
    topic_id: Mapped[int] = mapped_column(ForeignKey("event_topics.id"))
    is_property: Mapped[bool] = mapped_column(Boolean, default=False)
    property_operation: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message_xml: Mapped[str | None] = mapped_column(Text)
    """The ``tt:Message`` as recorded when it has more than simple items (ElementItems, a
    metadata document's own rendering); None: rebuilt from the columns."""


class PtzPosition(Base):
    """A PTZ position recorded in a metadata track (tt:PTZStatus), for FindPTZPosition."""

    __tablename__ = "ptz_positions"
    __table_args__ = (
        Index("ix_ptz_positions_recording_time_id", "recording_id", "time_us", "id"),
        Index("ix_ptz_positions_track_time", "track_id", "time_us"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    time_us: Mapped[int] = mapped_column(BigInteger)
    pan: Mapped[float | None] = mapped_column(Float)
    tilt: Mapped[float | None] = mapped_column(Float)
    zoom: Mapped[float | None] = mapped_column(Float)
    pan_tilt_space: Mapped[str | None] = mapped_column(String(256))
    """None: the generic position space (what nearly every camera reports)."""
    zoom_space: Mapped[str | None] = mapped_column(String(256))


class MetadataIndexMark(Base):
    """How far the search indexer has read a metadata track, and what it found there."""

    __tablename__ = "metadata_index_marks"
    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    until_us: Mapped[int] = mapped_column(BigInteger)
    """End of the last indexed document: documents at or after it are new."""
    has_ptz: Mapped[bool] = mapped_column(Boolean, default=False)
    has_analytics: Mapped[bool] = mapped_column(Boolean, default=False)
    has_events: Mapped[bool] = mapped_column(Boolean, default=False)
    ptz_spaces: Mapped[str] = mapped_column(String(2048), default="")
    """Space-separated PTZ space URIs seen (tt:MetadataAttributes/@PtzSpaces)."""


class User(Base):
    """A user of the ONVIF services; the password is kept encrypted (digests need it)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    """ONVIF user level: Administrator, Operator, User (or Anonymous, Extended)."""
    password_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_us: Mapped[int] = mapped_column(BigInteger)


class Receiver(Base):
    """An ONVIF receiver: an RTSP source the recorder pulls from."""

    __tablename__ = "receivers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LEN), unique=True)
    mode: Mapped[str] = mapped_column(String(16), default="NeverConnect")
    media_uri: Mapped[str] = mapped_column(String(2048), default="")
    """The camera URI without its password (the user name stays)."""
    media_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The URI's password as written, sealed (nvr.ingest.receiver_secrets); None: none."""
    stream_type: Mapped[str] = mapped_column(String(16), default="RTP-Unicast")
    transport: Mapped[str] = mapped_column(String(16), default="RTSP")
    auto_created: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Named quirk policies and other per-receiver settings."""
    created_us: Mapped[int] = mapped_column(BigInteger)


class RecordingJob(Base):
    """An ONVIF recording job: moves data from sources into tracks of one recording."""

    __tablename__ = "recording_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LEN), unique=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16), default="Idle")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    schedule_token: Mapped[str | None] = mapped_column(String(TOKEN_LEN))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """tt:RecordingJobSource list: source token, type and track mapping."""
    event_filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    activated_us: Mapped[int] = mapped_column(BigInteger, default=0)
    """When Mode last became Active: priority ties go to the most recently activated job."""
    created_us: Mapped[int] = mapped_column(BigInteger)


class Meta(Base):
    """Key/value facts about this database, such as its identity (``database_id``)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Uplink(Base):
    """An ONVIF uplink configuration (``tup:Configuration``), keyed by its remote address."""

    __tablename__ = "uplinks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    remote_address: Mapped[str] = mapped_column(String(1024), unique=True)
    user_level: Mapped[list[str]] = mapped_column(JSON, default=list)
    """tt:StringList of the user levels (or roles) granted to requests through the uplink."""
    certificate_id: Mapped[str | None] = mapped_column(String(64))
    cert_path_validation_policy_id: Mapped[str | None] = mapped_column(String(64))
    authorization_server: Mapped[str | None] = mapped_column(String(TOKEN_LEN))
    created_us: Mapped[int] = mapped_column(BigInteger)
