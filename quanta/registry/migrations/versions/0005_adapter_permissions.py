"""adapters shared with other tenants (OpenAI's checkpoint permissions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:00:00

An ``adapter_permission`` row lets a tenant use another tenant's adapter (or checkpoint
model): serve it and fine-tune from it. Deleting the adapter or the tenant drops it.
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('adapter_permission',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('adapter_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['adapter_id'], ['adapter.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('adapter_id', 'tenant_id')
    )
    op.create_index('ix_adapter_permission_adapter_id', 'adapter_permission', ['adapter_id'])
    op.create_index('ix_adapter_permission_tenant_id', 'adapter_permission', ['tenant_id'])


def downgrade() -> None:
    op.drop_index('ix_adapter_permission_tenant_id', table_name='adapter_permission')
    op.drop_index('ix_adapter_permission_adapter_id', table_name='adapter_permission')
    op.drop_table('adapter_permission')
