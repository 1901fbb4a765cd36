"""the id of the HMAC key of each client's NIK digest, so that key can be rotated;
digests stored before it were made with the one key then configured, whose id is h1

Revision ID: ruj0004
Revises: ruj0003
Create Date: 2026-12-02 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "ruj0004"
down_revision = "ruj0003"
branch_labels = None
depends_on = None

# services/rujukan/crypto.py UNNAMED_HMAC_KID: the id of a key written without one
UNNAMED_HMAC_KID = "h1"


def upgrade() -> None:
    op.add_column(
        "clients",
        sa.Column(
            "nik_key_id", sa.String(length=32), nullable=False, server_default=UNNAMED_HMAC_KID
        ),
    )
    op.alter_column("clients", "nik_key_id", server_default=None)
    op.create_index(op.f("ix_clients_nik_key_id"), "clients", ["nik_key_id"], unique=False)


def downgrade() -> None:
    # before this revision every digest is read with the one configured key
    others = op.get_bind().scalar(
        sa.text("SELECT COUNT(*) FROM clients WHERE nik_key_id <> :kid"), {"kid": UNNAMED_HMAC_KID}
    )
    if others:
        raise RuntimeError(
            f"{others} client digest(s) were made with a NIK key other than "
            f"{UNNAMED_HMAC_KID}: the schema before ruj0004 cannot tell them apart"
        )
    op.drop_index(op.f("ix_clients_nik_key_id"), table_name="clients")
    op.drop_column("clients", "nik_key_id")
