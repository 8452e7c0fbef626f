"""calendar mirror

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:22:09.567603
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import syncd.store.tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_outbox',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'task_id')
    )
    with op.batch_alter_table('calendar_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_user_due', ['user_id', 'not_before'], unique=False)

    op.create_table('calendar_links',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('calendar_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('tokens', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sync_token', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('connected_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paused_until', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_push_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_pull_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('last_error_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('push_lease_until', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pull_lease_until', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('channel_resource_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('channel_token', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('channel_expires_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    with op.batch_alter_table('calendar_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_links_channel_id'), ['channel_id'], unique=False)

    op.create_table('event_links',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('etag', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('synced', sa.JSON(), nullable=False),
    sa.Column('base', sa.JSON(), nullable=False),
    sa.Column('incarnation', sa.Integer(), nullable=False),
    sa.Column('unlinked', sa.Boolean(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('updated_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'task_id')
    )
    with op.batch_alter_table('event_links', schema=None) as batch_op:
        batch_op.create_index('ix_event_links_event', ['user_id', 'event_id'], unique=False)

    op.create_table('oauth_states',
    sa.Column('state_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('code_verifier', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('redirect_uri', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', syncd.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('state_hash')
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rerun', sa.Boolean(), server_default=sa.text('(false)'), nullable=False))

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('completed_source', sqlmodel.sql.sqltypes.AutoString(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('completed_source')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('rerun')

    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_user_id'))

    op.drop_table('oauth_states')
    op.drop_table('event_links')
    with op.batch_alter_table('calendar_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_links_channel_id'))

    op.drop_table('calendar_links')
    with op.batch_alter_table('calendar_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_user_due')

    op.drop_table('calendar_outbox')
