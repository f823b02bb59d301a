"""uploads in parts (OpenAI's Uploads API)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:30:00

``upload`` is a file being sent in parts; each ``upload_part`` holds one part's bytes
as a blob (a root for garbage collection) until the upload completes into a ``file``,
is cancelled or expires, when its parts go.
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upload',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('mime_type', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('file_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id']),
    sa.ForeignKeyConstraint(['file_id'], ['file.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_upload_tenant_id', 'upload', ['tenant_id'])
    op.create_index('ix_upload_status', 'upload', ['status'])
    op.create_table('upload_part',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('upload_id', sa.String(length=40), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['upload_id'], ['upload.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sha256'], ['blob.sha256']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_upload_part_upload_id', 'upload_part', ['upload_id'])
    op.create_index('ix_upload_part_sha256', 'upload_part', ['sha256'])


def downgrade() -> None:
    op.drop_index('ix_upload_part_sha256', table_name='upload_part')
    op.drop_index('ix_upload_part_upload_id', table_name='upload_part')
    op.drop_table('upload_part')
    op.drop_index('ix_upload_status', table_name='upload')
    op.drop_index('ix_upload_tenant_id', table_name='upload')
    op.drop_table('upload')
