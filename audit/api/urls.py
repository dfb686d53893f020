from django.urls import path

from audit.api.events.views import AuditEventBatchCreateApi, AuditEventCreateApi
from audit.api.views import AuditBatchCreateApi, AuditCreateApi
from audit.models import AuditKind

app_name = "audit"

urlpatterns = [
    *(
        path(f"audit/{kind.value}", AuditCreateApi.as_view(audit_kind=kind), name=f"{kind.value}-create")
        for kind in AuditKind
    ),
    path("audit/batch", AuditBatchCreateApi.as_view(), name="batch-create"),
    path("audit/events", AuditEventCreateApi.as_view(), name="events-create"),
    path("audit/events/batch", AuditEventBatchCreateApi.as_view(), name="events-batch-create"),
]
