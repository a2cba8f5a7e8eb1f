"""segments: indexes for retention and run repair

ix_segments_dir_start (storage_dir_id, start_us): the oldest segments of one storage dir,
in order, for the size cap and free-space floor. ix_segments_run_start (run_id, start_us)
replaces ix_segments_run (run_id): the first and last segment of a run without reading it all.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index('ix_segments_run')
        batch_op.create_index('ix_segments_run_start', ['run_id', 'start_us'], unique=False)
        batch_op.create_index('ix_segments_dir_start', ['storage_dir_id', 'start_us'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index('ix_segments_dir_start')
        batch_op.drop_index('ix_segments_run_start')
        batch_op.create_index('ix_segments_run', ['run_id'], unique=False)
