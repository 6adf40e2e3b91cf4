"""Admin login lockout (django-axes): LOGIN_FAILURE_LIMIT wrong passwords per username and address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "pw-Signalbox-1"  # tests/conftest.py make_user


def login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def test_login__ten_wrong_passwords__right_one_refused_until_the_cooloff_ends(settings, viewer):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    client = Client()
    for _ in range(10):
        assert login(client, viewer.username, "wrong").status_code in (200, 429)

    locked = login(client, viewer.username, PASSWORD)

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # After the cool-off the right password works again (the clock moved past it).
    settings.AXES_COOLOFF_TIME = timedelta(microseconds=1)
    assert signed_in(login(client, viewer.username, PASSWORD))


def test_login__lockout_is_per_username_and_address(viewer, editor):
    client = Client()
    for _ in range(10):
        login(client, viewer.username, "wrong")

    assert signed_in(login(Client(), viewer.username, PASSWORD, address="198.51.100.9"))
    assert signed_in(login(Client(), editor.username, PASSWORD))


def test_login__failures_below_the_limit__right_password_works_and_resets_the_count(settings, viewer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(Client(), viewer.username, "wrong")

    assert signed_in(login(Client(), viewer.username, PASSWORD))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(Client(), viewer.username, "wrong")
    assert signed_in(login(Client(), viewer.username, PASSWORD))


def test_login__behind_one_trusted_proxy__address_read_from_x_forwarded_for(settings, viewer):
    settings.NUM_PROXIES = 1
    for _ in range(10):
        Client().post(
            LOGIN,
            {"username": viewer.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )

    same = Client().post(
        LOGIN,
        {"username": viewer.username, "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    other = Client().post(
        LOGIN,
        {"username": viewer.username, "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )

    assert same.status_code == 429
    assert signed_in(other)
