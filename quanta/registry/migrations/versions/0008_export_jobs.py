"""exports are queued work: the export_job table

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:40:00

``POST /v1/quanta/models/{model}/exports`` records an export job; a quantize worker
(``quanta exports worker``) claims it, runs it and records the export, so the tune API
never runs an export in its own process.
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'export_job',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=True),
        sa.Column('model', sa.String(length=255), nullable=False),
        sa.Column('format', sa.String(length=32), nullable=False),
        sa.Column('accuracy_n', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('export_id', sa.String(length=40), nullable=True),
        sa.Column('error', sa.JSON(), nullable=True),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker_id', sa.String(length=100), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_export_job_tenant_id', 'export_job', ['tenant_id'])
    op.create_index('ix_export_job_status', 'export_job', ['status'])


def downgrade() -> None:
    op.drop_index('ix_export_job_status', table_name='export_job')
    op.drop_index('ix_export_job_tenant_id', table_name='export_job')
    op.drop_table('export_job')
