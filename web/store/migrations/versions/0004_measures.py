"""Session measures, safeguarding at admission (members' emergency contact, where a member is
today) and after-session feedback.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _session() -> sa.Column:
    return sa.Column("session_id", sa.String(40), sa.ForeignKey("group_sessions.id"),
                     nullable=False)


def _member(nullable: bool = False) -> sa.Column:
    return sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"),
                     nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("emergency_contact_enc", sa.Text(), nullable=True))
    # Focus as the host last set it, so a restarted room keeps it
    with op.batch_alter_table("live_rooms") as batch:
        batch.add_column(sa.Column("focus", sa.Boolean(), nullable=True))
    op.create_table(
        "measure_responses",
        sa.Column("id", sa.String(40), primary_key=True),
        _session(),
        _member(),
        sa.Column("instrument", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        _ts("submitted_at"),
        sa.Column("result_enc", sa.Text(), nullable=False),
        sa.UniqueConstraint("session_id", "member_id", "instrument"),
    )
    op.create_index("ix_measure_responses_session_id", "measure_responses", ["session_id"])
    op.create_index("ix_measure_responses_member_id", "measure_responses", ["member_id"])
    op.create_index("ix_measure_responses_submission_id", "measure_responses",
                    ["submission_id"])
    op.create_table(
        "arrival_checks",
        sa.Column("id", sa.String(40), primary_key=True),
        _session(),
        _member(),
        _ts("updated_at"),
        sa.Column("location_enc", sa.Text(), nullable=False),
        sa.UniqueConstraint("session_id", "member_id"),
    )
    op.create_index("ix_arrival_checks_session_id", "arrival_checks", ["session_id"])
    op.create_index("ix_arrival_checks_member_id", "arrival_checks", ["member_id"])
    op.create_table(
        "session_feedback",
        sa.Column("id", sa.String(40), primary_key=True),
        _session(),
        _member(nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("answers_enc", sa.Text(), nullable=False),
    )
    op.create_index("ix_session_feedback_session_id", "session_feedback", ["session_id"])
    op.create_index("ix_session_feedback_member_id", "session_feedback", ["member_id"])
    op.create_table(
        "feedback_receipts",
        sa.Column("session_id", sa.String(40), sa.ForeignKey("group_sessions.id"),
                  primary_key=True),
        sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"), primary_key=True),
    )


def downgrade() -> None:
    for table in ("feedback_receipts", "session_feedback", "arrival_checks",
                  "measure_responses"):
        op.drop_table(table)
    with op.batch_alter_table("live_rooms") as batch:
        batch.drop_column("focus")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("emergency_contact_enc")
