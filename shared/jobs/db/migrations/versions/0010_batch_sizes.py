"""batch sizes: how many jobs shared the student's and the teacher's model call with this one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("student_batch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("teacher_batch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("teacher_batch")
        batch.drop_column("student_batch")
