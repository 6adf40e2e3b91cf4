"""The Celery app. Broker from CELERY_BROKER_URL; with none set, tasks run in-process."""

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("signalbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def queue_now(task: Any, *args: Any, **options: Any) -> Any:
    """Queue `task` (a task, or a registered task's name) after one attempt to reach the broker;
    raise at once when it is down. By name, a service queues its task without importing the tasks
    module that imports it.

    `apply_async(retry=False)` still retries the broker *connection* for about 6 s (kombu's
    default), which a web request would wait out. Runs the task in-process when Celery is eager.
    """
    if isinstance(task, str):
        task = app.tasks[task]
    if task.app.conf.task_always_eager:
        return task.apply_async(*args, **options)
    with task.app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
        return task.apply_async(*args, retry=False, connection=connection, **options)
