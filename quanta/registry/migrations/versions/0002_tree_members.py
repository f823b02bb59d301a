"""record which blobs are tree manifests, and what they hold

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:10:00

Which blobs are manifests was guessed from their content (any JSON with the manifest's
``kind``), so an uploaded dataset could pass for one. Now the registry records it when
it writes a tree: ``blob.is_tree`` and one ``tree_member`` row per file; references
are found with SQL, never by reading blobs. Trees written before this revision are
backfilled when the registry opens (``Registry._backfill_trees``): that needs the blob
store, which a migration does not have.
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ARTIFACT_TABLES = ("file", "base_model", "adapter", "export", "checkpoint")


def upgrade() -> None:
    with op.batch_alter_table('blob') as batch:
        batch.add_column(sa.Column('is_tree', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table('tree_member',
    sa.Column('tree_sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('member_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tree_sha256'], ['blob.sha256'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_sha256'], ['blob.sha256'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tree_sha256', 'path')
    )
    op.create_index('ix_tree_member_member_sha256', 'tree_member', ['member_sha256'])
    for table in ARTIFACT_TABLES:
        op.create_index(f'ix_{table}_sha256', table, ['sha256'])


def downgrade() -> None:
    for table in ARTIFACT_TABLES:
        op.drop_index(f'ix_{table}_sha256', table_name=table)
    op.drop_index('ix_tree_member_member_sha256', table_name='tree_member')
    op.drop_table('tree_member')
    with op.batch_alter_table('blob') as batch:
        batch.drop_column('is_tree')
