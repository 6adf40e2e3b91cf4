"""Settings for bench_pages: the benchmark settings, with static files served from the finders.

`collectstatic` with the manifest storage currently stops at vendor/jsoneditor/jsoneditor.min.js
(it names a source map that is not shipped), so the pages' CSS and JS come from the finders.
"""

from tests.benchmarks.bench_settings import *  # noqa: F403
from tests.benchmarks.bench_settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
