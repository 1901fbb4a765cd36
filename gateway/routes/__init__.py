"""The gateway's API endpoints, one mixin per area: importing this package registers
every route (gateway.http.ROUTES); gateway.service composes the mixins into the service.
"""

from gateway.routes.attachments import (
    AgreementAttachmentRoutes,
    ReferralAttachmentRoutes,
    ReportAttachmentRoutes,
)
from gateway.routes.audit import AuditRoutes
from gateway.routes.documents import DocumentRoutes
from gateway.routes.fhir import FhirRoutes
from gateway.routes.fhir_bulk import FhirBulkRoutes
from gateway.routes.keys import KeyRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.operations import OperationsRoutes
from gateway.routes.partners import PartnerRoutes
from gateway.routes.referrals import ReferralRoutes
from gateway.routes.reports import ReportRoutes
from gateway.routes.webhooks import WebhookRoutes

API_ROUTES = (
    OperationsRoutes,
    KeyRoutes,
    PartnerRoutes,
    ReferralRoutes,
    NotificationRoutes,
    AuditRoutes,
    ReportRoutes,
    WebhookRoutes,
    FhirRoutes,
    FhirBulkRoutes,
    ReferralAttachmentRoutes,
    AgreementAttachmentRoutes,
    ReportAttachmentRoutes,
    DocumentRoutes,
)
