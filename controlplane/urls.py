from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from metrics.ingest.apis import client_decisions_ingest
from metrics.urls import api_urlpatterns as metrics_api_urlpatterns
from metrics.urls import report_urlpatterns
from routing.urls import api_urlpatterns, client_urlpatterns

handler404 = "controlplane.errors.page_not_found"

admin.site.site_header = "Signalbox"
admin.site.site_title = "Signalbox"
admin.site.index_title = "Routing control plane"

urlpatterns = [
    path("", RedirectView.as_view(url="/dashboards/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/client/decisions", client_decisions_ingest, name="client-decisions-ingest"),
    path("api/v1/client/", include(client_urlpatterns)),
    path("dashboards/", include("metrics.urls")),
    path("reports/", include((report_urlpatterns, "reports"))),
    path("api/v1/metrics/", include((metrics_api_urlpatterns, "metrics-api"))),
    path("api/v1/", include(api_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]
