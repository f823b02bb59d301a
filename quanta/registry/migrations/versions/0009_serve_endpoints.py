"""which server serves which base: the serve_endpoint table

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00

One ``quanta serve`` process serves one base model; a node or cluster with several bases
runs several. Each server records itself here when it starts serving (base model,
engine, the URL clients use, gRPC address, host, pid), refreshes ``last_seen`` while it
runs and deletes its row at a clean shutdown, so the tune API, the console and the other
servers know where each base is served.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'serve_endpoint',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('base_model_id', sa.String(length=64), nullable=False),
        sa.Column('engine', sa.String(length=32), nullable=False),
        sa.Column('url', sa.String(length=255), nullable=False),
        sa.Column('grpc', sa.String(length=255), nullable=True),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_serve_endpoint_base_model_id', 'serve_endpoint', ['base_model_id'])
    op.create_index('ix_serve_endpoint_last_seen', 'serve_endpoint', ['last_seen'])


def downgrade() -> None:
    op.drop_index('ix_serve_endpoint_last_seen', table_name='serve_endpoint')
    op.drop_index('ix_serve_endpoint_base_model_id', table_name='serve_endpoint')
    op.drop_table('serve_endpoint')
