"""shared keys: the generated VAPID key, one for every node

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 03:20:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import syncd.store.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shared_keys',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('shared_keys')
