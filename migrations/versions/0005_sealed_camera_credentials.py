"""receivers: sealed camera passwords

receivers.media_password_enc holds the password of the camera URI, sealed with the daemon's
secret box (AES-GCM, key in security.key_file); media_uri keeps the URI without it.

The key file is not known here (it is daemon configuration, and ``alembic upgrade`` may run
without it), so this migration only adds the column: the daemon seals the passwords still
in plaintext URIs when it loads the receivers on its next start (ReceiverManager.start).
Downgrading is refused while sealed passwords exist, as it would lose them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receivers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media_password_enc', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    sealed = op.get_bind().scalar(
        sa.text('SELECT COUNT(*) FROM receivers WHERE media_password_enc IS NOT NULL')
    )
    if sealed:
        raise RuntimeError(
            f'{sealed} receiver(s) have a sealed camera password that this revision cannot '
            'store: configure those receivers without a password first'
        )
    with op.batch_alter_table('receivers', schema=None) as batch_op:
        batch_op.drop_column('media_password_enc')
