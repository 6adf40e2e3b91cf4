"""URLs of the dashboards (`urlpatterns`, namespace "dashboards") and of their JSON endpoints
(`api_urlpatterns`, mounted under /api/v1/metrics/)."""

from django.contrib import admin
from django.urls import path

from metrics import apis, views

app_name = "dashboards"

# The admin header's "View site" link opens the dashboards (they link back with "Admin").
admin.site.site_url = "/dashboards/"

urlpatterns = [
    path("", views.PAGE_VIEWS["overview"], name="overview"),
    *[path(f"{name}/", views.PAGE_VIEWS[name], name=name) for name, _ in views.PAGES if name != "overview"],
]

api_urlpatterns = [
    path("overview/", apis.MetricsOverviewApi.as_view(), name="overview"),
    path("cost/", apis.MetricsCostApi.as_view(), name="cost"),
    path("escalation/", apis.MetricsEscalationApi.as_view(), name="escalation"),
    path("quality/", apis.MetricsQualityApi.as_view(), name="quality"),
    path("latency/", apis.MetricsLatencyApi.as_view(), name="latency"),
    path("budget/", apis.MetricsBudgetApi.as_view(), name="budget"),
    path("worksheet/", apis.MetricsWorksheetApi.as_view(), name="worksheet"),
]

