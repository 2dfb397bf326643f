"""one word for the cut-off: jobs.threshold and jobs.threshold_source become tau and tau_source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RENAMES = (("threshold", "tau"), ("threshold_source", "tau_source"))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite renames columns through a table copy
        for old, new in RENAMES:
            batch.alter_column(old, new_column_name=new)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for old, new in RENAMES:
            batch.alter_column(new, new_column_name=old)
