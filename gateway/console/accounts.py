"""People's accounts of the console: passwords hashed with argon2id, sessions as random
tokens stored by digest, a lock after repeated failed sign-ins. Machines keep API keys
(gateway.keys); a person signed in here acts with the same role and partner rules."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import eventlet.patcher
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool
from sqlalchemy import delete, func, select

from bersinar import codes
from bersinar.contracts.referrals import is_plain_id
from bersinar.db import UnitOfWork
from bersinar.envelope import rfc3339, utcnow
from bersinar.errors import Conflict, NotFound, ValidationFailed
from gateway.keys import Caller, digest
from gateway.models import ConsoleSession, ConsoleUser

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
PASSWORD_MIN, PASSWORD_MAX = 10, 128

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# checked against when the user does not exist, so a wrong name costs as long as a wrong
# password and the answer time tells nothing
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Policy:
    lock_after: int = 5
    lock_minutes: int = 15
    session_hours: int = 8


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request, and the session's CSRF token."""

    user_id: str
    username: str
    full_name: str
    role: str
    partner_id: str | None
    csrf_token: str
    token_hash: str

    @property
    def caller(self) -> Caller:
        """How the services are told who asks: the same shape as an API key's caller."""
        return Caller(key_id=f"user:{self.username}", role=self.role, partner_id=self.partner_id)


class SignInRefused(Exception):
    """Wrong name or password, or the account is locked (``locked_until``) or disabled
    (told only to whoever gave its right password)."""

    def __init__(self, locked_until: datetime | None = None, disabled: bool = False):
        super().__init__("sign-in refused")
        self.locked_until = locked_until
        self.disabled = disabled


def _offload(fn, *args):
    """argon2 spends tens of milliseconds of CPU: inside the gateway (eventlet) it runs on
    a thread, so the hub goes on serving other requests meanwhile."""
    if eventlet.patcher.is_monkey_patched("thread"):
        return tpool.execute(fn, *args)
    return fn(*args)


def hash_password(password: str) -> str:
    return _offload(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_offload(_hasher.verify, password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def check_new_user(data: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a new account, by field (empty: nothing)."""
    errors: dict[str, list[str]] = {}
    if not USERNAME.fullmatch(data.get("username") or ""):
        errors["username"] = [
            "3-64 karakter: huruf kecil, angka, titik, garis bawah atau tanda hubung."
        ]
    name = (data.get("full_name") or "").strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        errors["full_name"] = ["Isi nama lengkap (paling banyak 200 karakter)."]
    if data.get("role") not in codes.PEOPLE:
        errors["role"] = ["Pilih peran."]
    partner_id = data.get("partner_id") or None
    if data.get("role") == "partner" and not (partner_id and is_plain_id(partner_id)):
        errors["partner_id"] = ["Operator mitra harus terhubung dengan satu mitra."]
    if data.get("role") != "partner" and partner_id:
        errors["partner_id"] = ["Hanya operator mitra yang terhubung dengan mitra."]
    errors.update(check_password(data.get("password") or ""))
    return errors


def check_password(password: str, field: str = "password") -> dict[str, list[str]]:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return {field: [f"Kata sandi {PASSWORD_MIN}-{PASSWORD_MAX} karakter."]}
    return {}


def create_user(uow: UnitOfWork, data: dict[str, Any], created_by: str) -> dict[str, Any]:
    errors = check_new_user(data)
    if errors:
        raise ValidationFailed("Data pengguna tidak valid.", errors=errors)
    username = data["username"]
    if uow.session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)).first():
        raise Conflict(
            "Nama pengguna sudah dipakai.", errors={"username": ["Nama pengguna sudah dipakai."]}
        )
    now = utcnow()
    user = ConsoleUser(
        id=str(uuid.uuid4()),
        username=username,
        full_name=data["full_name"].strip(),
        role=data["role"],
        partner_id=data.get("partner_id") if data["role"] == "partner" else None,
        password_hash=hash_password(data["password"]),
        failed_logins=0,
        created_by=created_by,
        created_at=now,
        password_changed_at=now,
    )
    uow.session.add(user)
    uow.session.flush()
    return view(user)


def view(user: ConsoleUser) -> dict[str, Any]:
    locked_until = user.locked_until
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "partner_id": user.partner_id,
        "locked": bool(locked_until and locked_until > utcnow()),
        "disabled": user.disabled_at is not None,
        "created_at": rfc3339(user.created_at),
        "last_login_at": rfc3339(user.last_login_at) if user.last_login_at else None,
    }


def list_users(uow: UnitOfWork) -> list[dict[str, Any]]:
    users = uow.session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))
    return [view(u) for u in users]


def count_users(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(ConsoleUser)) or 0)


def _user(uow: UnitOfWork, user_id: str) -> ConsoleUser:
    user = uow.session.get(ConsoleUser, user_id) if is_plain_id(user_id) else None
    if user is None:
        raise NotFound("Pengguna tidak ditemukan.")
    return user


def find_user_id(uow: UnitOfWork, username: str) -> str:
    user = uow.session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)).first()
    if user is None:
        raise NotFound("Pengguna tidak ditemukan.")
    return user.id


def set_password(uow: UnitOfWork, user_id: str, password: str) -> dict[str, Any]:
    """A new password (an admin's reset or the user's own change): unlocks the account
    and ends every session of it."""
    errors = check_password(password)
    if errors:
        raise ValidationFailed("Kata sandi tidak valid.", errors=errors)
    user = _user(uow, user_id)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    uow.session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    return view(user)


def set_disabled(uow: UnitOfWork, user_id: str, disabled: bool, by_user_id: str) -> dict[str, Any]:
    """Disable an account (it signs in no more and its sessions end) or enable it again.
    An admin cannot disable their own account: someone must be left to enable it."""
    user = _user(uow, user_id)
    if disabled and user.id == by_user_id:
        raise Conflict("Akun Anda sendiri tidak dapat dinonaktifkan.")
    if disabled and user.disabled_at is None:
        user.disabled_at = utcnow()
        uow.session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    if not disabled:
        user.disabled_at = None
    return view(user)


def change_own_password(uow: UnitOfWork, user_id: str, current: str, new: str) -> None:
    user = _user(uow, user_id)
    if not _verify(user.password_hash, current):
        raise ValidationFailed(
            "Kata sandi sekarang salah.", errors={"current": ["Kata sandi sekarang salah."]}
        )
    set_password(uow, user_id, new)


def sign_in(uow: UnitOfWork, username: str, password: str, policy: Policy) -> str:
    """A new session token for the right name and password; the caller commits either
    way (a failure is counted). Locked after ``policy.lock_after`` failures in a row."""
    now = utcnow()
    user = uow.session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)).first()
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise SignInRefused()
    locked_until = user.locked_until
    if locked_until and locked_until > now:
        raise SignInRefused(locked_until)
    if not _verify(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= policy.lock_after:
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=policy.lock_minutes)
            raise SignInRefused(user.locked_until)
        raise SignInRefused()
    if user.disabled_at is not None:
        raise SignInRefused(disabled=True)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    token = secrets.token_urlsafe(32)
    uow.session.add(
        ConsoleSession(
            token_hash=digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=policy.session_hours),
        )
    )
    uow.session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    return token


def session_of(uow: UnitOfWork, token: str) -> SignedIn | None:
    if not token:
        return None
    row = uow.session.execute(
        select(ConsoleSession, ConsoleUser)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == digest(token))
    ).first()
    if row is None:
        return None
    session, user = row
    if session.expires_at <= utcnow() or user.disabled_at is not None:
        return None
    return SignedIn(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        partner_id=user.partner_id,
        csrf_token=session.csrf_token,
        token_hash=session.token_hash,
    )


def sign_out(uow: UnitOfWork, token_hash: str) -> None:
    uow.session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))
