"""The project's URLs plus /bench/bare: a bare Django view returning the same bytes as a policy fetch."""

import os
from pathlib import Path

from django.http import HttpResponse
from django.urls import path

from controlplane.urls import urlpatterns as project_urlpatterns

_BODY = Path(os.environ["BENCH_BARE_BODY"]).read_bytes() if os.environ.get("BENCH_BARE_BODY") else b"{}"


def bare(request):
    return HttpResponse(_BODY, content_type="application/json")


urlpatterns = [path("bench/bare", bare), *project_urlpatterns]
