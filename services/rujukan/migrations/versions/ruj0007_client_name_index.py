"""the blind index of client names: keyed digests of normalised name tokens

Clients stored before are indexed by ``bersinar crypto rotate`` (they count as written
with an older key until then).

Revision ID: ruj0007
Revises: ruj0006
Create Date: 2026-12-04 23:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "ruj0007"
down_revision = "ruj0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("name_index_key_id", sa.String(32), nullable=True))
    op.create_index("ix_clients_name_index_key_id", "clients", ["name_index_key_id"])
    op.create_table(
        "client_name_tokens",
        sa.Column(
            "client_id",
            sa.String(36),
            sa.ForeignKey("clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(64), primary_key=True),
    )
    op.create_index(
        "ix_client_name_tokens_digest", "client_name_tokens", ["digest", "client_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_client_name_tokens_digest", table_name="client_name_tokens")
    op.drop_table("client_name_tokens")
    op.drop_index("ix_clients_name_index_key_id", table_name="clients")
    op.drop_column("clients", "name_index_key_id")
