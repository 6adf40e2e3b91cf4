"""URLs of the dashboards (`urlpatterns`, namespace "dashboards") and of their JSON endpoints
(`api_urlpatterns`, mounted under /api/v1/metrics/)."""

from django.contrib import admin
from django.urls import path

from metrics.alerts import apis as alert_apis
from metrics.dashboards import apis as dashboard_apis
from metrics.dashboards import views as dashboard_views
from metrics.reports import apis as report_apis
from metrics.reports import views as report_views
from metrics.whatif import apis as whatif_apis

app_name = "dashboards"

# The admin header's "View site" link opens the dashboards (they link back with "Admin").
admin.site.site_url = "/dashboards/"

urlpatterns = [
    path("", dashboard_views.PAGE_VIEWS["overview"], name="overview"),
    path("canary/draft/", dashboard_views.PAGE_VIEWS["canary-draft"], name="canary-draft"),
    *[
        path(f"{name}/", dashboard_views.PAGE_VIEWS[name], name=name)
        for name, _ in dashboard_views.PAGES
        if name != "overview"
    ],
]

api_urlpatterns = [
    path("overview/", dashboard_apis.MetricsOverviewApi.as_view(), name="overview"),
    path("cost/", dashboard_apis.MetricsCostApi.as_view(), name="cost"),
    path("escalation/", dashboard_apis.MetricsEscalationApi.as_view(), name="escalation"),
    path("quality/", dashboard_apis.MetricsQualityApi.as_view(), name="quality"),
    path("latency/", dashboard_apis.MetricsLatencyApi.as_view(), name="latency"),
    path("budget/", dashboard_apis.MetricsBudgetApi.as_view(), name="budget"),
    path("worksheet/", dashboard_apis.MetricsWorksheetApi.as_view(), name="worksheet"),
    path("canary/", dashboard_apis.MetricsCanaryApi.as_view(), name="canary"),
    path("attribution/", dashboard_apis.MetricsAttributionApi.as_view(), name="attribution"),
    path("reports/<str:policy>/<str:month>/", report_apis.MetricsReportApi.as_view(), name="report"),
    path("whatif/", whatif_apis.MetricsWhatIfApi.as_view(), name="whatif"),
    path("alerts/", alert_apis.AlertListApi.as_view(), name="alerts"),
    path("alerts/<int:alert_id>/", alert_apis.AlertDetailApi.as_view(), name="alert"),
    path("alerts/<int:alert_id>/acknowledge/", alert_apis.AlertAcknowledgeApi.as_view(), name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", alert_apis.AlertResolveApi.as_view(), name="alert-resolve"),
    path("channels/", alert_apis.ChannelListApi.as_view(), name="channels"),
    path("channels/<int:channel_id>/", alert_apis.ChannelDetailApi.as_view(), name="channel"),
    path("channels/<int:channel_id>/test/", alert_apis.ChannelTestApi.as_view(), name="channel-test"),
]

# The monthly review report (namespace "reports", mounted under /reports/).
report_urlpatterns = [
    path("", report_views.REPORT_VIEWS["root"], name="root"),
    path("<str:policy>/", report_views.REPORT_VIEWS["index"], name="index"),
    path("<str:policy>/<str:month>/", report_views.REPORT_VIEWS["report"], name="report"),
    path("<str:policy>/<str:month>/report.json", report_views.REPORT_VIEWS["json"], name="json"),
    path("<str:policy>/<str:month>/review/", report_views.REPORT_VIEWS["review"], name="review"),
    path("<str:policy>/<str:month>/<str:table>.csv", report_views.REPORT_VIEWS["csv"], name="csv"),
]
