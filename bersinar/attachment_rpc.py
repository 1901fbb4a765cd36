"""The RPCs of a service that keeps attachments of its objects (bersinar.attachments):
upload, list, download, remove. The service names its table and its kind of object and
says which object an owner path names and whether the caller may see it; it may seal
what it stores and write down who read or removed what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

from bersinar import attachments, codes
from bersinar.contracts.attachments import AttachmentRemoval, AttachmentUpload
from bersinar.entrypoints import rpc
from bersinar.errors import Forbidden, ValidationFailed

DOWNLOADED = "unduh lampiran {id}"
REMOVED = "hapus lampiran {id}: {reason}"


def actor_label(caller: dict[str, Any]) -> str:
    return f"{caller.get('role')}:{caller.get('key_id')}"


class AttachmentEntrypoints:
    """Mixed into a nameko service that has ``uow``, ``clock`` and ``config``.

    ``owner`` is the object's path as the gateway has it: a referral's id; a partner's id
    and an agreement's; a partner's id and a period. ``caller`` is the gateway's
    ``{"role", "key_id", "partner_id"}``."""

    # the table (bersinar.attachments.attachment_table) and the key of
    # bersinar.codes.ATTACHMENT_KINDS of this service's objects
    attachment_rows: Table
    attachment_of = ""

    def attachment_owner(self, uow, owner: list[str], caller: dict[str, Any]) -> str:
        """The id the object's attachments are kept under; 404 for an object the caller
        may not see (another partner's is as if absent)."""
        raise NotImplementedError

    def attachment_seal(self) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
        """How content is kept at rest and read back: as it is, unless the service
        seals it."""
        return bytes, bytes

    def attachment_audit(self, uow, owner_id: str, caller, purpose: str, now) -> None:
        """Write down a read or a removal (rujukan keeps its access log); by default the
        attachment's own record says who removed it, and reads go unwritten."""

    @rpc
    def upload_attachment(self, owner, upload, caller):
        upload = AttachmentUpload().load(upload or {})
        if upload["kind"] not in codes.ATTACHMENT_KINDS[self.attachment_of]:
            raise ValidationFailed(errors={"kind": ["Jenis lampiran tidak dikenal di sini."]})
        seal, _ = self.attachment_seal()
        max_bytes = attachments.max_bytes(self.config)
        with self.uow() as uow:
            owner_id = self.attachment_owner(uow, list(owner), caller)
            made = attachments.add(
                uow.session,
                self.attachment_rows,
                owner_id,
                upload,
                actor_label(caller),
                self.clock.now(),
                max_bytes,
                seal,
            )
            uow.commit()
        return made

    @rpc
    def list_attachments(self, owner, caller):
        with self.uow() as uow:
            owner_id = self.attachment_owner(uow, list(owner), caller)
            return attachments.listing(uow.session, self.attachment_rows, owner_id)

    @rpc
    def get_attachment(self, owner, attachment_id, caller):
        """With its content (base64)."""
        _, unseal = self.attachment_seal()
        with self.uow() as uow:
            owner_id = self.attachment_owner(uow, list(owner), caller)
            found = attachments.fetch(
                uow.session, self.attachment_rows, owner_id, str(attachment_id), unseal
            )
            purpose = DOWNLOADED.format(id=attachment_id)
            self.attachment_audit(uow, owner_id, caller, purpose, self.clock.now())
            uow.commit()
        return found

    @rpc
    def remove_attachment(self, owner, attachment_id, removal, caller):
        """An admin's, with a reason; the content is erased, the record stays."""
        removal = AttachmentRemoval().load(removal or {})
        if caller.get("role") != "admin":
            raise Forbidden("Hanya admin yang dapat menghapus lampiran.")
        with self.uow() as uow:
            owner_id = self.attachment_owner(uow, list(owner), caller)
            now = self.clock.now()
            removed = attachments.remove(
                uow.session,
                self.attachment_rows,
                owner_id,
                str(attachment_id),
                removal["reason"],
                actor_label(caller),
                now,
            )
            purpose = REMOVED.format(id=attachment_id, reason=removal["reason"])
            self.attachment_audit(uow, owner_id, caller, purpose, now)
            uow.commit()
        return removed
