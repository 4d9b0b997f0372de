"""Initial schema: accounts, groups, members, sessions, invites, attendance, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("participant_id", sa.String(40), nullable=False, unique=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "login_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        _ts("last_failure_at"),
        _ts("locked_until", nullable=True),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "group_clinicians",
        sa.Column("group_id", sa.String(40), sa.ForeignKey("groups.id"), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
        _ts("added_at"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("group_id", sa.String(40), sa.ForeignKey("groups.id"), nullable=False),
        sa.Column("participant_id", sa.String(40), nullable=False, unique=True),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("pseudonym_skeleton", sa.String(128), nullable=False),
        sa.Column("real_name_enc", sa.Text(), nullable=False),
        sa.Column("contact_enc", sa.Text(), nullable=True),
        sa.Column("profile", sa.String(16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("group_id", "pseudonym_skeleton"),
    )
    op.create_index("ix_members_group_id", "members", ["group_id"])
    op.create_table(
        "group_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("group_id", sa.String(40), sa.ForeignKey("groups.id"), nullable=False),
        _ts("starts_at"),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        _ts("created_at"),
        _ts("opened_at", nullable=True),
        _ts("live_at", nullable=True),
        _ts("ended_at", nullable=True),
    )
    op.create_index("ix_group_sessions_group_id", "group_sessions", ["group_id"])
    op.create_table(
        "invites",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("session_id", sa.String(40), sa.ForeignKey("group_sessions.id"), nullable=False),
        sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("resume_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("issued_by", sa.String(40), nullable=False),
        _ts("issued_at"),
        _ts("redeemed_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.Column("refused_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_invites_session_id", "invites", ["session_id"])
    op.create_index("ix_invites_member_id", "invites", ["member_id"])
    op.create_table(
        "attendance",
        sa.Column(
            "session_id", sa.String(40), sa.ForeignKey("group_sessions.id"), primary_key=True
        ),
        sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"), primary_key=True),
        _ts("first_joined_at", nullable=True),
        _ts("last_joined_at", nullable=True),
        _ts("last_left_at", nullable=True),
        sa.Column("joins", sa.Integer(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _ts("at"),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(120), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    # append-only, enforced by the database too: no code path updates or deletes, and a
    # stray UPDATE/DELETE (a bug, a console session) is refused
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'audit log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
            )


def downgrade() -> None:
    raise NotImplementedError("the initial schema is not downgraded: restore from backup")
