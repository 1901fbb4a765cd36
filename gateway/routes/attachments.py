"""Attachments of referrals (rujukan), agreements (mitra) and monthly reports (laporan):
a PDF, JPEG or PNG sent as the request body, judged by its content; listed and
downloaded by whoever may see the object they belong to, removed by an admin with a
reason (docs/attachments.md)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

from werkzeug.wrappers import Response

from bersinar import attachments
from bersinar.attachments import CONTENT_TYPES
from bersinar.codes import STAFF
from bersinar.contracts import attachments as contracts
from gateway.http import endpoint, read_upload, validated_json


@dataclass(frozen=True)
class Owner:
    """A kind of object that takes attachments: the service that keeps them, the path of
    one object, who may add and who may read them."""

    service: str
    kind: str
    path: str
    arguments: tuple[str, ...]
    title: str
    adders: tuple[str, ...]
    readers: tuple[str, ...]


REFERRAL = Owner(
    "rujukan",
    "referral",
    "/api/v1/referrals/<string:referral_id>/attachments",
    ("referral_id",),
    "rujukan",
    ("admin", "officer", "partner"),
    ("admin", "officer", "partner"),
)
AGREEMENT = Owner(
    "mitra",
    "agreement",
    "/api/v1/partners/<string:partner_id>/agreements/<string:agreement_id>/attachments",
    ("partner_id", "agreement_id"),
    "PKS",
    STAFF,
    (*STAFF, "partner"),
)
REPORT = Owner(
    "laporan",
    "report",
    "/api/v1/reports/<string:partner_id>/<string:period>/attachments",
    ("partner_id", "period"),
    "laporan bulanan",
    ("partner", "admin"),
    (*STAFF, "partner"),
)
ONE = "/<string:attachment_id>"


def _owner_path(owner: Owner, url_args: dict[str, str]) -> list[str]:
    return [url_args[name] for name in owner.arguments]


def disposition(filename: str) -> str:
    """A download's name: in ASCII for every client, and in full (RFC 6266, RFC 8187)
    for those that read it; a header holds Latin-1 only."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def download(found: dict) -> Response:
    return Response(
        base64.b64decode(found["content"]),
        mimetype=found["content_type"],
        headers={
            "Content-Disposition": disposition(found["filename"]),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def attachment_routes(owner: Owner) -> type:
    """The four operations on one kind of object's attachments, as a mixin of the
    gateway service (each method, and so each operationId, named after the kind)."""

    def upload(self, request, caller, data, params, **url_args):
        max_bytes = attachments.max_bytes(self.config)
        content, declared = read_upload(request, max_bytes)
        upload = {
            "kind": params["kind"],
            "filename": params.get("filename"),
            "content_type": declared,
            "content": base64.b64encode(content).decode(),
        }
        path = _owner_path(owner, url_args)
        return self.rpc(owner.service, "upload_attachment", path, upload, caller.as_dict())

    def listing(self, request, caller, data, params, **url_args):
        path = _owner_path(owner, url_args)
        return {"items": self.rpc(owner.service, "list_attachments", path, caller.as_dict())}

    def fetch(self, request, caller, data, params, attachment_id, **url_args):
        path = _owner_path(owner, url_args)
        found = self.rpc(owner.service, "get_attachment", path, attachment_id, caller.as_dict())
        return download(found)

    def remove(self, request, caller, data, params, attachment_id, **url_args):
        path = _owner_path(owner, url_args)
        removal = validated_json(request)
        return self.rpc(
            owner.service, "remove_attachment", path, attachment_id, removal, caller.as_dict()
        )

    declared = {
        upload: dict(
            method="POST",
            path=owner.path,
            summary=f"Lampirkan berkas (PDF, JPEG, PNG) pada {owner.title}",
            roles=owner.adders,
            query=contracts.upload_query(owner.kind),
            response=contracts.Attachment,
            status=201,
            uploads=CONTENT_TYPES,
        ),
        listing: dict(
            method="GET",
            path=owner.path,
            summary=f"Lampiran {owner.title} (tanpa isinya)",
            roles=owner.readers,
            response=contracts.AttachmentList,
        ),
        fetch: dict(
            method="GET",
            path=owner.path + ONE,
            summary=f"Unduh satu lampiran {owner.title}",
            roles=owner.readers,
            produces=CONTENT_TYPES,
        ),
        remove: dict(
            method="DELETE",
            path=owner.path + ONE,
            summary=f"Hapus lampiran {owner.title} dengan alasan (admin; dicatat)",
            roles=("admin",),
            body=contracts.AttachmentRemoval,
            response=contracts.Attachment,
            example={"reason": "Berkas keliru: milik klien lain."},
        ),
    }
    methods = {}
    for fn, how in declared.items():
        fn.__name__ = fn.__qualname__ = f"{owner.kind}_attachment_{fn.__name__}"
        methods[fn.__name__] = endpoint(**how, tags=("lampiran",))(fn)
    return type(f"{owner.kind.capitalize()}AttachmentRoutes", (), methods)


ReferralAttachmentRoutes = attachment_routes(REFERRAL)
AgreementAttachmentRoutes = attachment_routes(AGREEMENT)
ReportAttachmentRoutes = attachment_routes(REPORT)
