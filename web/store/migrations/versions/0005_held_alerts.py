"""Alerts held for the next host, and each member's consent to the clinician's own view, kept
with the room's live state so a restarted node has them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("live_rooms") as batch:
        batch.add_column(sa.Column("held_alerts", sa.JSON(), nullable=True))
    with op.batch_alter_table("live_participants") as batch:
        batch.add_column(sa.Column("clinician_consent", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_participants") as batch:
        batch.drop_column("clinician_consent")
    with op.batch_alter_table("live_rooms") as batch:
        batch.drop_column("held_alerts")
