"""Live session state: rooms, their participants' policy state, used grants.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "live_rooms",
        sa.Column("room_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        _flag("running"),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("starts_at_s", sa.Float(), nullable=False),
        _flag("locked"),
        _flag("paused"),
        _flag("ended"),
        sa.Column("alive_at_s", sa.Float(), nullable=False),
    )
    op.create_index("ix_live_rooms_session_id", "live_rooms", ["session_id"])
    op.create_table(
        "live_participants",
        sa.Column(
            "room_id", sa.String(64), sa.ForeignKey("live_rooms.room_id"), primary_key=True
        ),
        sa.Column("participant_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("changed_at_s", sa.Float(), nullable=False),
        sa.Column("disconnected_at_s", sa.Float(), nullable=True),
        sa.Column("state_before_disconnect", sa.String(16), nullable=True),
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("profile_floor", sa.String(16), nullable=True),
        _flag("audio_muted"),
        _flag("unmute_allowed"),
        _flag("hand_raised"),
        _flag("video_stopped"),
        _flag("video_held_by_host"),
        _flag("text_only"),
        sa.Column("resume_hash", sa.String(64), nullable=True),
    )
    op.create_table(
        "used_grants",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("expires_at_s", sa.Float(), nullable=False),
    )
    op.create_index("ix_used_grants_room_id", "used_grants", ["room_id"])
    op.create_index("ix_used_grants_expires_at_s", "used_grants", ["expires_at_s"])


def downgrade() -> None:
    for table in ("used_grants", "live_participants", "live_rooms"):
        op.drop_table(table)
