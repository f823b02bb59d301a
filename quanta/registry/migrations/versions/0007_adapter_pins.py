"""adapters can be pinned in the serving engine's memory

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:00:00

``adapter.pinned``: ``quanta adapters pin`` (or the owner's ``POST
/v1/quanta/models/{model}/pin``) keeps the adapter in every ``quanta serve`` of its base,
never evicted, re-pinned when a server starts. A plain ``ADD COLUMN`` with a server
default, as in 0003 and 0006 (no table rebuild).
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('adapter', sa.Column('pinned', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('adapter', 'pinned')
