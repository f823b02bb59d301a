"""evals, their runs and output items; batches and their answered lines

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 20:40:00

OpenAI's Evals and Batch APIs over Quanta's models. An eval run and a batch are queued
work, claimed by a worker as fine-tuning jobs are; each graded item (``eval_output_item``)
and each answered batch line (``batch_result``) is stored as it is done, unique per run or
batch and line, so a killed worker's successor resumes without doing any twice.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None



def _work_columns() -> list[sa.Column]:
    return [
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker_id', sa.String(length=100), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'eval',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('data_source_config', sa.JSON(), nullable=False),
        sa.Column('testing_criteria', sa.JSON(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_eval_tenant_id', 'eval', ['tenant_id'])
    op.create_table(
        'eval_run',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('eval_id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('model', sa.String(length=255), nullable=True),
        sa.Column('data_source', sa.JSON(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('error', sa.JSON(), nullable=True),
        sa.Column('result_counts', sa.JSON(), nullable=False),
        sa.Column('per_model_usage', sa.JSON(), nullable=False),
        sa.Column('per_testing_criteria_results', sa.JSON(), nullable=False),
        *_work_columns(),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['eval_id'], ['eval.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_eval_run_eval_id', 'eval_run', ['eval_id'])
    op.create_index('ix_eval_run_tenant_id', 'eval_run', ['tenant_id'])
    op.create_index('ix_eval_run_status', 'eval_run', ['status'])
    op.create_table(
        'eval_output_item',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('run_id', sa.String(length=40), nullable=False),
        sa.Column('eval_id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('datasource_item_id', sa.Integer(), nullable=False),
        sa.Column('datasource_item', sa.JSON(), nullable=False),
        sa.Column('sample', sa.JSON(), nullable=False),
        sa.Column('results', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['eval_run.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'datasource_item_id'),
    )
    op.create_index('ix_eval_output_item_run_id', 'eval_output_item', ['run_id'])
    op.create_index('ix_eval_output_item_tenant_id', 'eval_output_item', ['tenant_id'])
    op.create_table(
        'batch',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('endpoint', sa.String(length=64), nullable=False),
        sa.Column('input_file_id', sa.String(length=40), nullable=False),
        sa.Column('completion_window', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('output_file_id', sa.String(length=40), nullable=True),
        sa.Column('error_file_id', sa.String(length=40), nullable=True),
        sa.Column('errors', sa.JSON(), nullable=True),
        sa.Column('request_counts', sa.JSON(), nullable=False),
        sa.Column('usage', sa.JSON(), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('output_expires_after', sa.JSON(), nullable=True),
        *_work_columns(),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        *[sa.Column(f'{stage}_at', sa.DateTime(timezone=True), nullable=True)
          for stage in ('in_progress', 'finalizing', 'completed', 'failed', 'expired',
                        'expires', 'cancelling', 'cancelled')],
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_batch_tenant_id', 'batch', ['tenant_id'])
    op.create_index('ix_batch_status', 'batch', ['status'])
    op.create_table(
        'batch_result',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('custom_id', sa.String(length=512), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('record', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('batch_id', 'line'),
    )
    op.create_index('ix_batch_result_batch_id', 'batch_result', ['batch_id'])


def downgrade() -> None:
    for table in ('batch_result', 'batch', 'eval_output_item', 'eval_run', 'eval'):
        op.drop_table(table)
