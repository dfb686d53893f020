from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/v1/", include("audit.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]

handler400 = "kubernaut_storage.errors.handler400"
handler403 = "kubernaut_storage.errors.handler403"
handler404 = "kubernaut_storage.errors.handler404"
handler500 = "kubernaut_storage.errors.handler500"
