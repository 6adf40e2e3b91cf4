"""The admin UI: every page renders for each role, every action works end to end through the
admin, and roles without the permission are refused by the services behind the pages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import reverse

from routing import services
from routing.models import AuditEntry, CatalogModel, Policy, PolicyVersion, SdkKey
from tests import factories

pytestmark = pytest.mark.django_db


def _login(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def _policy_url(policy: Policy, name: str = "change", *args: Any) -> str:
    return reverse(f"admin:routing_policy_{name}", args=[policy.pk, *args])


def _draft(policy: Policy) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(policy=policy, status=PolicyVersion.Status.DRAFT).first()


def _live(policy: Policy) -> PolicyVersion:
    policy.refresh_from_db()
    assert policy.live_version is not None
    return policy.live_version


@pytest.fixture
def checkout() -> Policy:
    """A policy with v1 live and a draft (revision 1) that changes one threshold."""
    policy = factories.policy("checkout")
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = 0.65
    services.draft_save(policy=policy, document=doc, user=None)
    return policy


# --- every page renders -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["publisher", "editor", "viewer"])
def test_every_admin_page__renders_for_each_role(client: Any, make_user: Any, checkout: Policy, role: str) -> None:
    factories.publish(checkout, factories.document(), comment="second")
    key, _ = factories.sdk_key(checkout)
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.PUBLISH).first()
    model = CatalogModel.objects.get(model_id="gpt-4o")
    services.draft_save(policy=checkout, document=factories.document(default_route="extraction"), user=None)
    _login(client, make_user(role))
    urls = [
        reverse("admin:index"),
        reverse("admin:routing_policy_changelist"),
        reverse("admin:routing_policy_changelist") + "?q=check",
        _policy_url(checkout),
        _policy_url(checkout, "publish"),
        _policy_url(checkout, "rollback", 1),
        _policy_url(checkout, "version", 1),
        _policy_url(checkout, "version_diff", 1),
        _policy_url(checkout, "discard"),
        reverse("admin:routing_catalogmodel_changelist"),
        reverse("admin:routing_catalogmodel_changelist") + "?provider=openai&tier__exact=1",
        reverse("admin:routing_catalogmodel_change", args=[model.pk]),
        reverse("admin:routing_sdkkey_changelist"),
        reverse("admin:routing_sdkkey_change", args=[key.pk]),
        reverse("admin:routing_sdkkey_created", args=[key.pk]),
        reverse("admin:routing_sdkkey_revoke", args=[key.pk]),
        reverse("admin:routing_auditentry_changelist"),
        reverse("admin:routing_auditentry_changelist") + f"?action=policy.publish&policy__id__exact={checkout.pk}",
        reverse("admin:routing_auditentry_change", args=[entry.pk]),  # type: ignore[union-attr]
    ]
    if role != "viewer":
        urls.append(reverse("admin:routing_policy_add"))
    if role == "publisher":
        urls.append(reverse("admin:routing_sdkkey_add"))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url


def test_policy_page__shows_sections_editor_and_versions(client: Any, publisher: Any, checkout: Policy) -> None:
    response = _login(client, publisher).get(_policy_url(checkout))
    html = response.content.decode()
    assert 'id="sb-jsoneditor"' in html
    assert 'id="sb-policy-schema"' in html
    assert "vendor/jsoneditor/jsoneditor.min.js" in html
    assert "cdn" not in html.lower()
    assert 'name="expected_revision" value="1"' in html  # the draft's revision
    assert "routes.extraction.escalate.min_confidence" in html  # the draft-vs-live diff
    assert 'name="extraction__min_confidence"' in html
    assert 'value="0.65"' in html
    assert "LIVE" in html
    assert "Publish draft" in html
    assert "Roll back to this version" not in html  # the only version is live


def test_policy_page__viewer_sees_no_edit_or_publish_buttons(client: Any, viewer: Any, checkout: Policy) -> None:
    html = _login(client, viewer).get(_policy_url(checkout)).content.decode()
    assert "Publish draft" not in html
    assert 'id="save-draft"' not in html
    assert 'id="save-thresholds"' not in html
    assert 'data-readonly="true"' in html


def test_editor_schema__is_draft07_for_the_bundled_validator(client: Any, publisher: Any, checkout: Policy) -> None:
    html = _login(client, publisher).get(_policy_url(checkout)).content.decode()
    schema = json.loads(re.search(r'id="sb-policy-schema"[^>]*>(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert "$defs" not in json.dumps(schema)
    assert "route" in schema["definitions"]


# --- the policy list ----------------------------------------------------------------------------


def test_policy_list__shows_live_draft_and_last_change(client: Any, publisher: Any, checkout: Policy) -> None:
    factories.policy("empty", publish=False)
    Policy.objects.create(slug="blank", name="Blank")
    html = _login(client, publisher).get(reverse("admin:routing_policy_changelist")).content.decode()
    assert "v1" in html
    assert "yes · rev 1" in html  # checkout's draft
    assert "nothing published" in html  # empty and blank
    assert "Draft saved" in html  # checkout's last audit action
    assert "system" in html  # its author


def test_policy_list__query_count_does_not_grow_with_policies(
    client: Any, publisher: Any, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add_policies(*slugs: str) -> None:
        for slug in slugs:
            p = factories.policy(slug)
            services.draft_save(policy=p, document=factories.document(default_route="extraction"), user=None)

    url = reverse("admin:routing_policy_changelist")
    add_policies("p0")
    _login(client, publisher)
    client.get(url)  # warm up the content-type cache
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    add_policies("p1", "p2", "p3", "p4")
    # session, user, permissions (2), counts (2), the page, the last audit entries
    with django_assert_max_num_queries(8) as five:
        response = client.get(url)
    assert len(five.captured_queries) == len(one.captured_queries)
    assert response.status_code == 200
    assert response.content.decode().count("yes · rev 1") == 5


def test_policy_list__search_by_slug_and_name(client: Any, publisher: Any, checkout: Policy) -> None:
    factories.policy("support")
    _login(client, publisher)
    html = client.get(reverse("admin:routing_policy_changelist") + "?q=Suppo").content.decode()
    assert f'href="{_policy_url(Policy.objects.get(slug="support"))}' in html
    assert f'href="{_policy_url(checkout)}' not in html


# --- drafts and thresholds ----------------------------------------------------------------------


def test_draft_save__valid_document__bumps_the_revision(client: Any, editor: Any, checkout: Policy) -> None:
    doc = factories.document(default_route="extraction")
    response = _login(client, editor).post(
        _policy_url(checkout), {"_action": "draft", "document": json.dumps(doc), "expected_revision": "1"}
    )
    assert response.status_code == 302
    draft = _draft(checkout)
    assert draft is not None
    assert draft.revision == 2
    assert draft.document["default_route"] == "extraction"
    assert draft.author == editor


def test_draft_save__no_draft__creates_one_from_the_text(client: Any, editor: Any) -> None:
    policy = factories.policy("fresh")
    doc = factories.document(default_route="extraction")
    response = _login(client, editor).post(
        _policy_url(policy), {"_action": "draft", "document": json.dumps(doc), "expected_revision": "0"}
    )
    assert response.status_code == 302
    draft = _draft(policy)
    assert draft is not None
    assert draft.revision == 1
    assert draft.base_number == 1


def test_draft_save__invalid_document__path_error_shown_text_kept_draft_unchanged(
    client: Any, editor: Any, checkout: Policy
) -> None:
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = 1.4
    text = json.dumps(doc, indent=2)
    response = _login(client, editor).post(
        _policy_url(checkout), {"_action": "draft", "document": text, "expected_revision": "1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1" in html
    assert "1.4" in response.context["draft_form"]["document"].value()
    draft = _draft(checkout)
    assert draft is not None
    assert draft.revision == 1
    assert draft.document["routes"]["extraction"]["escalate"]["min_confidence"] == 0.65


def test_draft_save__broken_json__error_shown_text_kept(client: Any, editor: Any, checkout: Policy) -> None:
    response = _login(client, editor).post(
        _policy_url(checkout), {"_action": "draft", "document": '{"schema_version": 1,', "expected_revision": "1"}
    )
    assert response.status_code == 200
    assert "Not valid JSON" in response.content.decode()
    assert response.context["draft_form"]["document"].value() == '{"schema_version": 1,'
    assert _draft(checkout).revision == 1  # type: ignore[union-attr]


def test_draft_save__someone_saved_meanwhile__409_with_diff_then_overwrite(
    client: Any, editor: Any, checkout: Policy
) -> None:
    services.draft_save(
        policy=checkout, document=factories.document(default_route="general"), user=None, expected_revision=1
    )  # another editor: revision 2
    mine = factories.document(default_route="extraction")
    _login(client, editor)
    response = client.post(
        _policy_url(checkout), {"_action": "draft", "document": json.dumps(mine), "expected_revision": "1"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "saved by someone else" in html
    assert 'name="overwrite_revision" value="2"' in html
    assert "default_route" in html  # the diff against the saved draft
    assert json.loads(response.context["draft_form"]["document"].value()) == mine
    assert _draft(checkout).revision == 2  # type: ignore[union-attr]

    response = client.post(
        _policy_url(checkout),
        {"_action": "draft", "document": json.dumps(mine), "expected_revision": "1", "overwrite_revision": "2"},
    )
    assert response.status_code == 302
    draft = _draft(checkout)
    assert draft is not None
    assert draft.revision == 3
    assert draft.document == mine


def test_draft_save__viewer__refused_and_draft_unchanged(client: Any, viewer: Any, checkout: Policy) -> None:
    response = _login(client, viewer).post(
        _policy_url(checkout),
        {"_action": "draft", "document": json.dumps(factories.document()), "expected_revision": "1"},
    )
    assert response.status_code == 403
    assert _draft(checkout).revision == 1  # type: ignore[union-attr]


def _thresholds(policy: Policy, client: Any) -> dict[str, str]:
    """The thresholds form as the page renders it (every field, current values)."""
    form = client.get(_policy_url(policy)).context["thresholds_form"]
    data = {"_action": "thresholds"}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else str(value)
    return data


def test_thresholds__save__patches_the_fields_into_a_draft_made_from_live(client: Any, editor: Any) -> None:
    policy = factories.policy("fresh")
    _login(client, editor)
    data = _thresholds(policy, client)
    assert data["expected_revision"] == "0"
    data.update(
        {
            "extraction__min_confidence": "0.75",
            "extraction__band_min": "0.1",
            "extraction__band_max": "0.25",
            "extraction__max_cost": "",
            "extraction__latency_budget_ms": "8000",
            "general__min_confidence": "0.5",
        }
    )
    response = client.post(_policy_url(policy), data)
    assert response.status_code == 302
    draft = _draft(policy)
    assert draft is not None
    assert draft.revision == 1
    assert draft.base_number == 1
    route = draft.document["routes"]["extraction"]
    assert route["escalate"]["min_confidence"] == 0.75
    assert route["expectations"]["escalation_bands"] == [{"min": 0.1, "max": 0.25}, {"min": 0.05, "max": 0.1}]
    assert "max_cost_per_request_usd" not in route["expectations"]
    assert route["latency_budget_ms"] == 8000
    assert isinstance(route["latency_budget_ms"], int)
    assert route["budget"]["downgrade_at"] == 0.8  # untouched
    assert draft.document["routes"]["general"]["escalate"]["min_confidence"] == 0.5
    # everything not in the form is exactly as it was
    expected = factories.document()
    expected["routes"]["extraction"] = route
    expected["routes"]["general"]["escalate"]["min_confidence"] = 0.5
    assert draft.document == expected


def test_thresholds__existing_draft__saved_on_top_of_it(client: Any, editor: Any, checkout: Policy) -> None:
    _login(client, editor)
    data = _thresholds(checkout, client)
    assert data["expected_revision"] == "1"
    assert data["extraction__min_confidence"] == "0.65"
    data["extraction__downgrade_at"] = "0.9"
    assert client.post(_policy_url(checkout), data).status_code == 302
    draft = _draft(checkout)
    assert draft is not None
    assert draft.revision == 2
    assert draft.document["routes"]["extraction"]["budget"]["downgrade_at"] == 0.9
    assert draft.document["routes"]["extraction"]["escalate"]["min_confidence"] == 0.65


def test_thresholds__out_of_range__error_on_the_field_and_nothing_saved(
    client: Any, editor: Any, checkout: Policy
) -> None:
    _login(client, editor)
    data = _thresholds(checkout, client)
    data["extraction__min_confidence"] = "1.4"
    response = client.post(_policy_url(checkout), data)
    assert response.status_code == 200
    errors = response.context["thresholds_form"].errors
    assert "1.4 is greater than the maximum of 1" in str(errors["extraction__min_confidence"])
    assert _draft(checkout).revision == 1  # type: ignore[union-attr]


def test_thresholds__half_a_band__form_error(client: Any, editor: Any, checkout: Policy) -> None:
    _login(client, editor)
    data = _thresholds(checkout, client)
    data["extraction__band_max"] = ""
    response = client.post(_policy_url(checkout), data)
    assert response.status_code == 200
    assert "Set both ends of the band" in response.content.decode()
    assert _draft(checkout).revision == 1  # type: ignore[union-attr]


def test_discard__removes_the_draft(client: Any, editor: Any, checkout: Policy) -> None:
    response = _login(client, editor).post(_policy_url(checkout, "discard"))
    assert response.status_code == 302
    assert _draft(checkout) is None


def test_details__name_and_description_saved_slug_fixed(client: Any, editor: Any, checkout: Policy) -> None:
    response = _login(client, editor).post(
        _policy_url(checkout),
        {"_action": "details", "name": "Checkout flow", "description": "Payments", "slug": "other"},
    )
    assert response.status_code == 302
    checkout.refresh_from_db()
    assert (checkout.slug, checkout.name, checkout.description) == ("checkout", "Checkout flow", "Payments")
    assert AuditEntry.objects.filter(action=AuditEntry.Action.POLICY_UPDATE, policy=checkout).exists()


def test_policy_add__creates_and_opens_the_policy(client: Any, editor: Any) -> None:
    response = _login(client, editor).post(
        reverse("admin:routing_policy_add"), {"slug": "search", "name": "Search", "description": ""}
    )
    policy = Policy.objects.get(slug="search")
    assert response.status_code == 302
    assert response["Location"] == _policy_url(policy)
    assert _login(client, editor).get(_policy_url(policy)).status_code == 200


def test_policy_add__viewer__refused(client: Any, viewer: Any) -> None:
    response = _login(client, viewer).post(reverse("admin:routing_policy_add"), {"slug": "search", "name": "Search"})
    assert response.status_code == 403
    assert not Policy.objects.filter(slug="search").exists()


# --- publish and rollback -----------------------------------------------------------------------


def test_publish__with_comment__draft_becomes_the_next_live_version(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    _login(client, publisher)
    page = client.get(_policy_url(checkout, "publish"))
    assert "routes.extraction.escalate.min_confidence" in page.content.decode()
    response = client.post(
        _policy_url(checkout, "publish"), {"comment": "lower the escalation threshold", "expected_revision": "1"}
    )
    assert response.status_code == 302
    live = _live(checkout)
    assert live.number == 2
    assert live.comment == "lower the escalation threshold"
    assert live.document["routes"]["extraction"]["escalate"]["min_confidence"] == 0.65
    assert _draft(checkout) is None


def test_publish__without_comment__error_comment_field_nothing_published(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    response = _login(client, publisher).post(
        _policy_url(checkout, "publish"), {"comment": "  ", "expected_revision": "1"}
    )
    assert response.status_code == 200
    assert "This field is required." in str(response.context["form"].errors["comment"])
    assert _live(checkout).number == 1
    assert _draft(checkout) is not None


def test_publish__draft_changed_since_review__conflict_comment_kept(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    services.draft_save(
        policy=checkout, document=factories.document(default_route="extraction"), user=None, expected_revision=1
    )
    response = _login(client, publisher).post(
        _policy_url(checkout, "publish"), {"comment": "ship it", "expected_revision": "1"}
    )
    assert response.status_code == 409
    assert "The draft changed since you reviewed it" in response.content.decode()
    assert response.context["form"]["comment"].value() == "ship it"
    assert _live(checkout).number == 1


def test_publish__stale_base__conflict_with_changes_then_rebase_and_publish(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    # Someone rolls back meanwhile: live is v2 (= v1), the draft is still based on v1.
    factories.publish(checkout, factories.document(default_route="extraction"), comment="x")
    services.draft_save(policy=checkout, document=factories.document(), user=None)  # draft based on v2
    services.policy_rollback(policy=checkout, to_number=1, user=None, comment="undo")  # v3 live
    _login(client, publisher)
    draft = _draft(checkout)
    assert draft is not None
    response = client.post(
        _policy_url(checkout, "publish"), {"comment": "ship", "expected_revision": str(draft.revision)}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "v3 is live now" in html
    assert "default_route" in html
    assert 'name="_action" value="rebase"' in html

    response = client.post(
        _policy_url(checkout),
        {"_action": "rebase", "expected_revision": str(draft.revision), "next": _policy_url(checkout, "publish")},
    )
    assert response.status_code == 302
    assert response["Location"] == _policy_url(checkout, "publish")
    draft = _draft(checkout)
    assert draft is not None
    assert draft.base_number == 3
    response = client.post(
        _policy_url(checkout, "publish"), {"comment": "ship", "expected_revision": str(draft.revision)}
    )
    assert response.status_code == 302
    assert _live(checkout).number == 4


def test_rollback__publishes_a_copy_of_the_old_version_and_audits_it(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    factories.publish(checkout, factories.document(default_route="extraction"), comment="v2")
    _login(client, publisher)
    page = client.get(_policy_url(checkout, "rollback", 1))
    assert page.status_code == 200
    assert "default_route" in page.content.decode()
    response = client.post(_policy_url(checkout, "rollback", 1), {"comment": "v2 misroutes chat"})
    assert response.status_code == 302
    live = _live(checkout)
    assert live.number == 3
    assert live.rollback_of == 1
    assert live.document == PolicyVersion.objects.get(policy=checkout, number=1).document
    entry = AuditEntry.objects.filter(policy=checkout, action=AuditEntry.Action.ROLLBACK).get()
    assert entry.comment == "rollback to v1: v2 misroutes chat"
    assert entry.target == "checkout:v3"
    html = client.get(_policy_url(checkout)).content.decode()
    assert "rollback of v1" in html


def test_rollback__without_comment__error_nothing_published(client: Any, publisher: Any, checkout: Policy) -> None:
    factories.publish(checkout, factories.document(default_route="extraction"), comment="v2")
    response = _login(client, publisher).post(_policy_url(checkout, "rollback", 1), {"comment": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert _live(checkout).number == 2


def test_publish__tampered_revision__error_shown_nothing_published(
    client: Any, publisher: Any, checkout: Policy
) -> None:
    """A revision that is not a number must not skip the "draft changed since review" check."""
    response = _login(client, publisher).post(
        _policy_url(checkout, "publish"), {"comment": "ship it", "expected_revision": "abc"}
    )
    assert response.status_code == 200
    assert "expected_revision: Enter a whole number." in response.content.decode()
    assert _live(checkout).number == 1
    assert _draft(checkout) is not None


@pytest.mark.parametrize("name", ["publish", "rollback"])
def test_publish_and_rollback__nul_in_comment__field_error_nothing_written(
    client: Any, publisher: Any, checkout: Policy, name: str
) -> None:
    factories.publish(checkout, factories.document(default_route="extraction"), comment="v2")
    services.draft_save(policy=checkout, document=factories.document(), user=None)
    audit_before = AuditEntry.objects.count()
    url = _policy_url(checkout, "rollback", 1) if name == "rollback" else _policy_url(checkout, "publish")
    response = _login(client, publisher).post(url, {"comment": "oops\x00", "expected_revision": "1"})
    assert response.status_code == 200
    assert "comment" in response.context["form"].errors
    assert _live(checkout).number == 2
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_publish_and_rollback__without_publish_permission__refused_db_unchanged(
    client: Any, make_user: Any, checkout: Policy, role: str
) -> None:
    factories.publish(checkout, factories.document(default_route="extraction"), comment="v2")
    services.draft_save(policy=checkout, document=factories.document(), user=None)
    draft = _draft(checkout)
    assert draft is not None
    _login(client, make_user(role))
    html = client.get(_policy_url(checkout)).content.decode()
    assert "Publish draft" not in html
    assert "Roll back to this version" not in html

    response = client.post(
        _policy_url(checkout, "publish"), {"comment": "sneaky", "expected_revision": str(draft.revision)}
    )
    assert response.status_code == 403
    response = client.post(_policy_url(checkout, "rollback", 1), {"comment": "sneaky"})
    assert response.status_code == 403
    assert _live(checkout).number == 2
    assert _draft(checkout) is not None
    assert not AuditEntry.objects.filter(comment__contains="sneaky").exists()


# --- SDK keys -----------------------------------------------------------------------------------


def test_key_create__secret_shown_once_and_only_its_hash_stored(client: Any, publisher: Any, checkout: Policy) -> None:
    _login(client, publisher)
    response = client.post(reverse("admin:routing_sdkkey_add"), {"name": "checkout-service", "policies": [checkout.pk]})
    assert response.status_code == 302
    key = SdkKey.objects.get(name="checkout-service")
    assert response["Location"] == reverse("admin:routing_sdkkey_created", args=[key.pk])
    page = client.get(response["Location"])
    secret = page.context["secret"]
    assert secret.startswith(f"sbx_{key.prefix}_")
    assert secret in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert services.sdk_key_hash(secret) == key.hashed_secret
    assert list(key.policies.all()) == [checkout]
    again = client.get(response["Location"])
    assert again.status_code == 200
    assert secret not in again.content.decode()
    assert secret not in client.get(reverse("admin:routing_sdkkey_change", args=[key.pk])).content.decode()


def test_key_create__no_policy__form_error_no_key(client: Any, publisher: Any) -> None:
    response = _login(client, publisher).post(reverse("admin:routing_sdkkey_add"), {"name": "x"})
    assert response.status_code == 200
    assert "policies" in response.context["form"].errors
    assert not SdkKey.objects.exists()


def test_key_revoke__button_sets_revoked_at(client: Any, publisher: Any, checkout: Policy) -> None:
    key, _ = factories.sdk_key(checkout)
    _login(client, publisher)
    detail = client.get(reverse("admin:routing_sdkkey_change", args=[key.pk])).content.decode()
    assert reverse("admin:routing_sdkkey_revoke", args=[key.pk]) in detail
    response = client.post(reverse("admin:routing_sdkkey_revoke", args=[key.pk]), {"comment": "leaked"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action=AuditEntry.Action.KEY_REVOKE, comment="leaked").exists()


def test_key_revoke__action_confirms_then_revokes(client: Any, publisher: Any, checkout: Policy) -> None:
    first, _ = factories.sdk_key(checkout, name="a")
    second, _ = factories.sdk_key(checkout, name="b")
    _login(client, publisher)
    url = reverse("admin:routing_sdkkey_changelist")
    confirm = client.post(url, {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]})
    assert confirm.status_code == 200
    assert "Revoke 2 keys?" in confirm.content.decode()
    assert SdkKey.objects.filter(revoked_at__isnull=False).count() == 0
    response = client.post(
        url,
        {"action": "revoke_selected", "_selected_action": [first.pk, second.pk], "post": "yes", "comment": "rotation"},
    )
    assert response.status_code == 302
    assert SdkKey.objects.filter(revoked_at__isnull=False).count() == 2


@pytest.mark.parametrize("comment", ["leaked\x00", "x" * 2001])
def test_key_revoke__action_with_bad_comment__asks_again_revokes_nothing(
    client: Any, publisher: Any, checkout: Policy, comment: str
) -> None:
    key, _ = factories.sdk_key(checkout)
    response = _login(client, publisher).post(
        reverse("admin:routing_sdkkey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes", "comment": comment},
    )
    assert response.status_code == 200
    assert "comment" in response.context["form"].errors
    assert 'class="sb-field__errors"' in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.KEY_REVOKE).exists()


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_keys__without_permission__create_and_revoke_refused(
    client: Any, make_user: Any, checkout: Policy, role: str
) -> None:
    key, _ = factories.sdk_key(checkout)
    _login(client, make_user(role))
    html = client.get(reverse("admin:routing_sdkkey_change", args=[key.pk])).content.decode()
    assert "Revoke…" not in html
    assert client.get(reverse("admin:routing_sdkkey_add")).status_code == 403
    response = client.post(reverse("admin:routing_sdkkey_add"), {"name": "x", "policies": [checkout.pk]})
    assert response.status_code == 403
    assert SdkKey.objects.count() == 1
    response = client.post(reverse("admin:routing_sdkkey_revoke", args=[key.pk]), {"comment": ""})
    assert response.status_code == 403
    response = client.post(
        reverse("admin:routing_sdkkey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"},
    )
    key.refresh_from_db()
    assert key.revoked_at is None


# --- catalog and audit --------------------------------------------------------------------------


def test_catalog__lists_current_prices(client: Any, viewer: Any, checkout: Policy) -> None:
    html = _login(client, viewer).get(reverse("admin:routing_catalogmodel_changelist")).content.decode()
    assert "gpt-4o-mini" in html
    assert "$0.15" in html
    assert "$0.60" in html
    assert "128,000" in html


def test_catalog__publisher_edits_the_tier_viewer_cannot(client: Any, make_user: Any, checkout: Policy) -> None:
    model = CatalogModel.objects.get(model_id="gpt-4o")
    url = reverse("admin:routing_catalogmodel_change", args=[model.pk])
    _login(client, make_user("viewer"))
    assert client.post(url, {"tier": 3, "model_id": "renamed"}).status_code == 403
    _login(client, make_user("publisher"))
    price = model.prices.get()
    response = client.post(
        url,
        {
            "tier": 3,
            "model_id": "renamed",
            "provider": "x",
            "prices-TOTAL_FORMS": "1",
            "prices-INITIAL_FORMS": "1",
            "prices-0-id": price.pk,
            "prices-0-model": model.pk,
        },
    )
    assert response.status_code == 302, response.context["errors"]
    model.refresh_from_db()
    assert (model.tier, model.model_id, model.provider) == (3, "gpt-4o", "openai")


def test_audit__read_only_for_everyone_and_shows_the_diff(client: Any, make_user: Any, checkout: Policy) -> None:
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.DRAFT_SAVE).latest("id")
    _login(client, make_user("publisher", superuser=True))
    url = reverse("admin:routing_auditentry_change", args=[entry.pk])
    html = client.get(url).content.decode()
    assert "routes.extraction.escalate.min_confidence" in html
    assert "sb-diff" in html
    assert 'name="_save"' not in html
    assert client.post(url, {"comment": "rewritten"}).status_code == 403
    assert client.get(reverse("admin:routing_auditentry_add")).status_code == 403
    assert client.get(reverse("admin:routing_auditentry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.comment == ""


def test_admin_preview__request_against_draft__shows_decision_and_reason(client, viewer):
    """'Try this request against this draft' runs the engine on the draft in the admin."""
    from routing import services as routing_services
    from tests import factories as f

    policy = f.policy("preview-me")
    doc = f.document()
    doc["routes"]["extraction"]["tiers"][0]["model"] = "gemini-1.5-flash"
    routing_services.draft_save(policy=policy, document=doc, user=None)
    client.force_login(viewer)
    url = f"/admin/routing/policy/{policy.pk}/preview/"

    empty = client.get(url)
    draft = client.get(url, {"version": "draft", "task_type": "extraction", "prompt_tokens": 100})
    live = client.get(
        url, {"version": "live", "task_type": "extraction", "prompt_tokens": 100, "route_spend": "0.95", "score": "0.9"}
    )

    assert empty.status_code == 200
    assert "preview-result" not in empty.content.decode()
    assert draft.context["result"]["decision"]["model"] == "gemini-1.5-flash"
    import html

    assert '"route_by": "task_type"' in html.unescape(draft.content.decode())
    live_decision = live.context["result"]["decision"]
    # The live version, not the draft: its tier-1 model, already the lowest tier at 95% of budget.
    assert live_decision["model"] == "gpt-4o-mini"
    assert live_decision["reason"]["budget"] == {
        "scope": "route",
        "fraction": 0.95,
        "downgrade_at": 0.8,
        "exempt": "lowest_tier",
    }


def test_admin_preview__bad_input__field_errors_not_500(client, viewer):
    from tests import factories as f

    policy = f.policy("preview-bad")
    client.force_login(viewer)

    response = client.get(
        f"/admin/routing/policy/{policy.pk}/preview/",
        {"version": "live", "task_type": "x", "prompt_tokens": "-5", "score": "7"},
    )

    assert response.status_code == 200
    assert response.context["result"] is None
    assert set(response.context["form"].errors) == {"prompt_tokens", "score"}
