"""search index: topic ids, keyset indexes, PTZ positions, metadata index marks

events.topic (a string per row) becomes events.topic_id into the small event_topics table;
the event indexes end in id for keyset pagination on (time_us, id) — globally, per recording
and per topic — and (track_id, time_us) serves deletes of a track's range. ptz_positions
holds the PTZ positions of metadata tracks; metadata_index_marks says how far the indexer has
read each metadata track.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_topics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=512), nullable=False),
    sa.Column('is_property', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_topics')),
    sa.UniqueConstraint('topic', name=op.f('uq_event_topics_topic'))
    )
    op.execute(
        "INSERT INTO event_topics (topic, is_property) "
        "SELECT topic, MAX(CASE WHEN is_property THEN 1 ELSE 0 END) = 1 FROM events GROUP BY topic"
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic_id', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE events SET topic_id = "
        "(SELECT event_topics.id FROM event_topics WHERE event_topics.topic = events.topic)"
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_recording_time')
        batch_op.drop_index('ix_events_time')
        batch_op.drop_index('ix_events_topic_time')
        batch_op.drop_column('topic')
        batch_op.alter_column('topic_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_events_topic_id_event_topics'), 'event_topics', ['topic_id'], ['id']
        )
        batch_op.create_index('ix_events_time_id', ['time_us', 'id'], unique=False)
        batch_op.create_index(
            'ix_events_recording_time_id', ['recording_id', 'time_us', 'id'], unique=False
        )
        batch_op.create_index('ix_events_topic_time_id', ['topic_id', 'time_us', 'id'], unique=False)
        batch_op.create_index('ix_events_track_time', ['track_id', 'time_us'], unique=False)

    op.create_table('ptz_positions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('time_us', sa.BigInteger(), nullable=False),
    sa.Column('pan', sa.Float(), nullable=True),
    sa.Column('tilt', sa.Float(), nullable=True),
    sa.Column('zoom', sa.Float(), nullable=True),
    sa.Column('pan_tilt_space', sa.String(length=256), nullable=True),
    sa.Column('zoom_space', sa.String(length=256), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_ptz_positions_recording_id_recordings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_ptz_positions_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ptz_positions'))
    )
    with op.batch_alter_table('ptz_positions', schema=None) as batch_op:
        batch_op.create_index(
            'ix_ptz_positions_recording_time_id', ['recording_id', 'time_us', 'id'], unique=False
        )
        batch_op.create_index('ix_ptz_positions_track_time', ['track_id', 'time_us'], unique=False)

    op.create_table('metadata_index_marks',
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('until_us', sa.BigInteger(), nullable=False),
    sa.Column('has_ptz', sa.Boolean(), nullable=False),
    sa.Column('has_analytics', sa.Boolean(), nullable=False),
    sa.Column('has_events', sa.Boolean(), nullable=False),
    sa.Column('ptz_spaces', sa.String(length=2048), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_metadata_index_marks_track_id_tracks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('track_id', name=op.f('pk_metadata_index_marks'))
    )


def downgrade() -> None:
    op.drop_table('metadata_index_marks')
    with op.batch_alter_table('ptz_positions', schema=None) as batch_op:
        batch_op.drop_index('ix_ptz_positions_track_time')
        batch_op.drop_index('ix_ptz_positions_recording_time_id')
    op.drop_table('ptz_positions')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=512), nullable=True))
    op.execute(
        "UPDATE events SET topic = "
        "(SELECT event_topics.topic FROM event_topics WHERE event_topics.id = events.topic_id)"
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_track_time')
        batch_op.drop_index('ix_events_topic_time_id')
        batch_op.drop_index('ix_events_recording_time_id')
        batch_op.drop_index('ix_events_time_id')
        batch_op.drop_constraint('fk_events_topic_id_event_topics', type_='foreignkey')
        batch_op.drop_column('topic_id')
        batch_op.alter_column('topic', existing_type=sa.String(length=512), nullable=False)
        batch_op.create_index('ix_events_topic_time', ['topic', 'time_us'], unique=False)
        batch_op.create_index('ix_events_time', ['time_us'], unique=False)
        batch_op.create_index('ix_events_recording_time', ['recording_id', 'time_us'], unique=False)
    op.drop_table('event_topics')
