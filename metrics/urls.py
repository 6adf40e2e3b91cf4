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
    path("reports/<str:policy>/<str:month>/", apis.MetricsReportApi.as_view(), name="report"),
    path("whatif/", apis.MetricsWhatIfApi.as_view(), name="whatif"),
    path("alerts/", apis.AlertListApi.as_view(), name="alerts"),
    path("alerts/<int:alert_id>/", apis.AlertDetailApi.as_view(), name="alert"),
    path("alerts/<int:alert_id>/acknowledge/", apis.AlertAcknowledgeApi.as_view(), name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", apis.AlertResolveApi.as_view(), name="alert-resolve"),
    path("channels/", apis.ChannelListApi.as_view(), name="channels"),
    path("channels/<int:channel_id>/", apis.ChannelDetailApi.as_view(), name="channel"),
    path("channels/<int:channel_id>/test/", apis.ChannelTestApi.as_view(), name="channel-test"),
]

# The monthly review report (namespace "reports", mounted under /reports/).
report_urlpatterns = [
    path("", views.REPORT_VIEWS["root"], name="root"),
    path("<str:policy>/", views.REPORT_VIEWS["index"], name="index"),
    path("<str:policy>/<str:month>/", views.REPORT_VIEWS["report"], name="report"),
    path("<str:policy>/<str:month>/report.json", views.REPORT_VIEWS["json"], name="json"),
    path("<str:policy>/<str:month>/review/", views.REPORT_VIEWS["review"], name="review"),
    path("<str:policy>/<str:month>/<str:table>.csv", views.REPORT_VIEWS["csv"], name="csv"),
]
