"""jobs keep the experiment trackers they report to (wandb, mlflow)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:00:00

``job.integrations``: the request's ``integrations`` as the API accepted them; the
worker opens (or, after a pause or a lost worker, reopens) those runs. A plain
``ADD COLUMN``, as in 0003: a rebuild would have to drop ``job``.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('job', sa.Column('integrations', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('job', 'integrations')
