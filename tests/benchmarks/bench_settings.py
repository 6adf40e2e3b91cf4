"""Settings for benchmarks: the real settings plus a bare baseline view at /bench/bare."""

from controlplane.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.bench_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
