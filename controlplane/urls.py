from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from controlplane.prometheus import metrics_scrape
from metrics.ingest.apis import client_decisions_ingest, otlp_traces_ingest
from metrics.urls import api_urlpatterns as metrics_api_urlpatterns
from metrics.urls import report_urlpatterns
from routing.urls import api_urlpatterns, client_urlpatterns
from signalbox_client.protocol import CLIENT_PREFIX, DECISIONS_PATH, OTLP_TRACES_PATH

handler404 = "controlplane.errors.page_not_found"

admin.site.site_header = "Signalbox"
admin.site.site_title = "Signalbox"
admin.site.index_title = "Routing control plane"

urlpatterns = [
    path("", RedirectView.as_view(url="/dashboards/", permanent=False)),
    path("admin/", admin.site.urls),
    # The client protocol (signalbox_client.protocol): /api/v1/client/decisions and /api/v1/client/policies/<slug>.
    path(DECISIONS_PATH.lstrip("/"), client_decisions_ingest, name="client-decisions-ingest"),
    path(CLIENT_PREFIX.lstrip("/") + "/", include(client_urlpatterns)),
    # OpenTelemetry's OTLP/HTTP trace export: GenAI spans as decision records (docs/otel.md).
    path(OTLP_TRACES_PATH.lstrip("/"), otlp_traces_ingest, name="otlp-traces-ingest"),
    path("metrics", metrics_scrape, name="metrics-scrape"),  # Prometheus (controlplane/prometheus.py)
    path("dashboards/", include("metrics.urls")),
    path("reports/", include((report_urlpatterns, "reports"))),
    path("api/v1/metrics/", include((metrics_api_urlpatterns, "metrics-api"))),
    path("api/v1/", include(api_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]
