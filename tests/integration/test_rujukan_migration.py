"""ruj0002 over data written before it: the key id of every client is read from its
ciphertexts, every referral gets the default response deadline, and the revision goes
back down cleanly. (The schema at head is checked against the models in
test_migrations.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bersinar.migrations import alembic_config, upgrade


def test_ruj0002_fills_key_ids_and_deadlines_of_existing_rows(fresh_database):
    url = fresh_database()
    upgrade("rujukan", url, "ruj0001")
    engine = create_engine(url)
    created = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO clients (id, nik_digest, nik_encrypted, name_encrypted, "
                "phone_encrypted, birth_date, sex, created_at) VALUES "
                "('c1', 'd1', 'k7:tokenA', 'k7:tokenB', NULL, '1990-08-17', 'M', :at)"
            ),
            {"at": created},
        )
        connection.execute(
            text(
                "INSERT INTO referrals (id, client_id, partner_id, service_type, source, status, "
                "age_group, consent, assessment, previous_referral_id, created_by, created_at, "
                "updated_at) VALUES ('r1', 'c1', 'yayasan-kipas', 'inpatient', 'TAT', "
                "'requested', '35-44', '{}', NULL, NULL, 'officer:k', :at, :at)"
            ),
            {"at": created},
        )
    upgrade("rujukan", url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT key_id FROM clients")) == "k7"
        due = connection.scalar(text("SELECT response_due_at FROM referrals"))
        assert due == datetime(2026, 6, 17, 3, 0, tzinfo=UTC)  # whatever the session's zone
        assert connection.scalar(text("SELECT COUNT(*) FROM access_audit")) == 0
    command.downgrade(alembic_config("rujukan", url), "ruj0001")
    with engine.connect() as connection:
        columns = set(
            connection.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'referrals'"
                )
            )
        )
        assert "status" in columns and "response_due_at" not in columns
        assert connection.scalar(text("SELECT COUNT(*) FROM referrals")) == 1
    engine.dispose()


def test_ruj0004_gives_stored_digests_the_key_id_of_the_single_nik_key(fresh_database):
    """Digests stored before NIK key ids were made with the one key then configured, which
    the single-key form of RUJUKAN_NIK_HMAC_KEY names h1; going back down is refused once
    a digest was made with another key (the older schema could not tell it apart)."""
    url = fresh_database()
    upgrade("rujukan", url, "ruj0003")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO clients (id, nik_digest, nik_encrypted, name_encrypted, "
                "phone_encrypted, key_id, birth_date, sex, created_at) VALUES "
                "('c1', 'd1', 'k1:tokenA', 'k1:tokenB', NULL, 'k1', '1990-08-17', 'M', now())"
            )
        )
    upgrade("rujukan", url)
    with engine.begin() as connection:
        assert connection.scalar(text("SELECT nik_key_id FROM clients")) == "h1"
        connection.execute(text("UPDATE clients SET nik_key_id = 'h2'"))
    with pytest.raises(RuntimeError, match="other than h1"):
        command.downgrade(alembic_config("rujukan", url), "ruj0003")
    with engine.begin() as connection:
        connection.execute(text("UPDATE clients SET nik_key_id = 'h1'"))
    command.downgrade(alembic_config("rujukan", url), "ruj0003")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT nik_digest FROM clients")) == "d1"
    engine.dispose()
