from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularSwaggerView

from audit.admin.views import correlation_timeline_view
from kubernaut_storage.http.openapi import OpenAPIDocumentView

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/", include("audit.api.urls")),
    path("api/schema/", OpenAPIDocumentView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
# API pods run with ADMIN_ENABLED=false and a database role that cannot read the sign-in
# tables; the admin runs in its own pods with the admin role (docs/DATABASE_ROLES.md).
if settings.ADMIN_ENABLED:
    urlpatterns += [
        # The auditors' correlation timeline, behind the admin login; listed before
        # admin.site.urls, whose catch-all would otherwise answer it.
        path(
            "admin/timeline/<str:correlation_id>/",
            admin.site.admin_view(correlation_timeline_view),
            name="audit-timeline",
        ),
        # --- end auditors
        path("admin/", admin.site.urls),
    ]

handler400 = "kubernaut_storage.http.errors.handler400"
handler403 = "kubernaut_storage.http.errors.handler403"
handler404 = "kubernaut_storage.http.errors.handler404"
handler500 = "kubernaut_storage.http.errors.handler500"
