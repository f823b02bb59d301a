"""jobs can be paused (the flag a running job's worker polls) and have results files

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00

``POST /v1/fine_tuning/jobs/{id}/pause`` on a running job sets ``job.pause_requested``;
its worker writes a checkpoint at the next step boundary and moves the job to
``paused``, and ``/resume`` queues it again. ``job.result_files``: the ids of the
files a finished job wrote (its step metrics CSV). Plain ``ADD COLUMN``s (SQLite and
PostgreSQL both have it): a batch table rebuild would have to drop ``job``, which the
rows of ``job_event`` and ``checkpoint`` reference.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('job', sa.Column('pause_requested', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.add_column('job', sa.Column('result_files', sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35), never a rebuild of ``job`` (see above).
    op.drop_column('job', 'result_files')
    op.drop_column('job', 'pause_requested')
