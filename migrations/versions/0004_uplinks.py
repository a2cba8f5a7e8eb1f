"""uplinks: the ONVIF uplink configurations

One row per tup:Configuration, keyed by its remote address (https:// or wss://). The user
levels are a JSON list; the live status is not stored (the connection manager knows it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('uplinks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('remote_address', sa.String(length=1024), nullable=False),
    sa.Column('user_level', sa.JSON(), nullable=False),
    sa.Column('certificate_id', sa.String(length=64), nullable=True),
    sa.Column('cert_path_validation_policy_id', sa.String(length=64), nullable=True),
    sa.Column('authorization_server', sa.String(length=64), nullable=True),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uplinks')),
    sa.UniqueConstraint('remote_address', name=op.f('uq_uplinks_remote_address'))
    )


def downgrade() -> None:
    op.drop_table('uplinks')
