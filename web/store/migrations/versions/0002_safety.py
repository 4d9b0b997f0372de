"""Clinical safety: hazard-log sign-offs, workshop answers, host checklists, evidence, incidents.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "hazard_sign_offs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        # unique: concurrent sign-offs of one version leave exactly one record
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("signed_by", sa.String(40), nullable=False),
        sa.Column("signed_by_username", sa.String(64), nullable=False),
        _ts("signed_at"),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("log_text", sa.Text(), nullable=False),
    )
    op.create_table(
        "workshop_answers",
        sa.Column("question_id", sa.String(64), primary_key=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.String(40), nullable=False),
        sa.Column("answered_by_username", sa.String(64), nullable=False),
        _ts("answered_at"),
    )
    op.create_table(
        "host_checklists",
        sa.Column(
            "session_id", sa.String(40), sa.ForeignKey("group_sessions.id"), primary_key=True
        ),
        sa.Column("confirmed", sa.JSON(), nullable=False),
        sa.Column("completed_by", sa.String(40), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "evidence_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.Column("started_by", sa.String(40), nullable=False),
        sa.Column("log_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _ts("at"),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_incidents_at", "incidents", ["at"])
    op.create_index("ix_incidents_session_id", "incidents", ["session_id"])
    op.create_index("ix_incidents_kind", "incidents", ["kind"])
    op.create_table(
        "incident_hazards",
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("hazard_id", sa.String(16), primary_key=True),
    )
    op.create_index("ix_incident_hazards_hazard_id", "incident_hazards", ["hazard_id"])


def downgrade() -> None:
    for table in (
        "incident_hazards",
        "incidents",
        "evidence_runs",
        "host_checklists",
        "workshop_answers",
        "hazard_sign_offs",
    ):
        op.drop_table(table)
