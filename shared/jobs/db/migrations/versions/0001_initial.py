"""jobs and calibrations

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("settings_hash", sa.String(32), nullable=False),
        sa.Column("student_settings", sa.JSON(), nullable=False),
        sa.Column("percentiles", sa.JSON(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_calibrations_preset", "calibrations", ["preset"])
    op.create_index("ix_calibrations_settings_hash", "calibrations", ["settings_hash"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("preset", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("sigma", sa.Float(), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("student_steps", sa.Integer(), nullable=False),
        sa.Column("student_guidance", sa.Float(), nullable=False),
        sa.Column("teacher_steps", sa.Integer(), nullable=False),
        sa.Column("teacher_guidance", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("calibration_id", sa.Integer(), sa.ForeignKey("calibrations.id"), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("student_score", sa.Float(), nullable=True),
        sa.Column("teacher_used", sa.Boolean(), nullable=True),
        sa.Column("student_steps_run", sa.Integer(), nullable=True),
        sa.Column("teacher_steps_run", sa.Integer(), nullable=True),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("student_image_key", sa.String(512), nullable=True),
        sa.Column("final_image_key", sa.String(512), nullable=True),
        sa.Column("student_attempts", sa.Integer(), nullable=False),
        sa.Column("teacher_attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("student_worker", sa.String(255), nullable=True),
        sa.Column("teacher_worker", sa.String(255), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("generate_s", sa.Float(), nullable=True),
        sa.Column("score_s", sa.Float(), nullable=True),
        sa.Column("teacher_s", sa.Float(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("student_started_at", TS, nullable=True),
        sa.Column("student_finished_at", TS, nullable=True),
        sa.Column("teacher_queued_at", TS, nullable=True),
        sa.Column("teacher_started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("calibrations")
