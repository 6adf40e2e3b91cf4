"""Policy lifecycle services and the constraints behind them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from routing import services
from routing.models import AuditEntry, Policy, PolicyVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_publish__numbers_versions_monotonically_per_policy():
    a = factories.policy("a")
    b = factories.policy("b")
    v2 = factories.publish(a, factories.document(default_route="extraction"))
    v3 = factories.publish(a, factories.document())

    assert (v2.number, v3.number) == (2, 3)
    assert b.live_version.number == 1
    a.refresh_from_db()
    assert a.live_version == v3


def test_publish__comment_required__nothing_published():
    p = factories.policy("a", publish=False)

    with pytest.raises(InvalidInput) as exc:
        services.policy_publish(policy=p, user=None, comment="  ")

    assert exc.value.errors == {"comment": ["This field is required."]}
    p.refresh_from_db()
    assert p.live_version is None
    assert not PolicyVersion.objects.filter(status="published").exists()


def test_publish__stale_draft__rejected_with_conflict_listing_changes():
    p = factories.policy("a")
    services.draft_save(policy=p, document=factories.document(default_route="extraction"), user=None)
    # Someone else publishes on the same base meanwhile (rollback makes v2 = v1, then edits):
    services.draft_discard(policy=p, user=None)
    factories.publish(p, factories.document(task_types={"chat": "general"}))
    services.draft_save(policy=p, document=factories.document(default_route="extraction"), user=None)
    PolicyVersion.objects.filter(policy=p, status="draft").update(base_number=1)

    with pytest.raises(Conflict) as exc:
        services.policy_publish(policy=p, user=None, comment="mine")

    assert exc.value.status_code == 409
    assert exc.value.extra["live_number"] == 2
    assert exc.value.extra["changes"] == [{"op": "removed", "path": "task_types.extraction", "old": "extraction"}]
    p.refresh_from_db()
    assert p.live_version.number == 2


def test_draft_save__rebase__moves_base_to_live_and_publish_succeeds():
    p = factories.policy("a")
    draft = services.draft_save(policy=p, document=factories.document(default_route="extraction"), user=None)
    PolicyVersion.objects.filter(pk=draft.pk).update(base_number=None)
    with pytest.raises(Conflict):
        services.policy_publish(policy=p, user=None, comment="x")

    services.draft_save(policy=p, document=draft.document, user=None, rebase=True)

    assert services.policy_publish(policy=p, user=None, comment="x").number == 2


def test_draft_save__stale_revision__conflict_and_draft_kept():
    p = factories.policy("a")
    services.draft_save(policy=p, document=factories.document(default_route="extraction"), user=None)

    with pytest.raises(Conflict) as exc:
        services.draft_save(policy=p, document=factories.document(), user=None, expected_revision=7)

    assert exc.value.extra == {"current_revision": 1}
    assert PolicyVersion.objects.get(policy=p, status="draft").document["default_route"] == "extraction"


def test_draft_save__invalid_document__errors_by_path_and_nothing_written():
    p = factories.policy("a")
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = 1.4
    doc["routes"]["extraction"]["tiers"][1]["model"] = "gpt-9"
    audit_before = AuditEntry.objects.count()

    with pytest.raises(InvalidInput) as exc:
        services.draft_save(policy=p, document=doc, user=None)

    assert exc.value.errors["routes.extraction.escalate.min_confidence"] == ["1.4 is greater than the maximum of 1"]
    assert "routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1" in exc.value.message
    assert not PolicyVersion.objects.filter(policy=p, status="draft").exists()
    assert AuditEntry.objects.count() == audit_before


def test_draft_save__unknown_model__names_its_path():
    p = factories.policy("a")
    doc = factories.document()
    doc["routes"]["extraction"]["tiers"][1]["model"] = "gpt-9"

    with pytest.raises(InvalidInput) as exc:
        services.draft_save(policy=p, document=doc, user=None)

    assert list(exc.value.errors) == ["routes.extraction.tiers.1.model"]
    assert "gpt-9" in exc.value.errors["routes.extraction.tiers.1.model"][0]


def test_draft_save__document_over_limit__too_large(settings):
    settings.POLICY_DOCUMENT_MAX_BYTES = 2_000
    p = factories.policy("a", publish=False)
    doc = factories.document()
    doc["routes"]["extraction"]["description"] = "x" * 3_000

    with pytest.raises(TooLarge) as exc:
        services.draft_save(policy=p, document=doc, user=None)

    assert exc.value.status_code == 413


def test_draft_save__nan__invalid_not_crash():
    p = factories.policy("a", publish=False)
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = float("nan")

    with pytest.raises(InvalidInput):
        services.draft_save(policy=p, document=doc, user=None)


def test_rollback__publishes_new_version_equal_to_old_and_audits_it():
    p = factories.policy("a")
    factories.publish(p, factories.document(default_route="extraction"))

    v3 = services.policy_rollback(policy=p, to_number=1, user=None, comment="v2 misroutes chat")

    assert v3.number == 3
    assert v3.rollback_of == 1
    assert v3.document == PolicyVersion.objects.get(policy=p, number=1).document
    p.refresh_from_db()
    assert p.live_version == v3
    entry = AuditEntry.objects.filter(action="policy.rollback").get()
    assert entry.comment == "rollback to v1: v2 misroutes chat"
    assert entry.target == "a:v3"
    assert entry.diff == [{"op": "changed", "path": "default_route", "old": "extraction", "new": "general"}]


def test_rollback__to_live_or_missing_version__refused():
    p = factories.policy("a")

    with pytest.raises(Conflict):
        services.policy_rollback(policy=p, to_number=1, user=None, comment="x")
    with pytest.raises(NotFound):
        services.policy_rollback(policy=p, to_number=9, user=None, comment="x")


def test_published_version__immutable_through_the_orm():
    p = factories.policy("a")
    v1 = p.live_version
    v1.document = {"tampered": True}

    with pytest.raises(ValidationError):
        v1.save()
    with pytest.raises(ValidationError):
        v1.delete()
    assert PolicyVersion.objects.get(pk=v1.pk).document == factories.document()


def test_one_draft_per_policy__enforced_by_the_database():
    p = factories.policy("a")
    services.draft_save(policy=p, document=factories.document(), user=None)

    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.create(policy=p, document={})


def test_version_numbers__unique_per_policy_in_the_database():
    p = factories.policy("a")

    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.create(policy=p, document={}, status="published", number=1, published_at=timezone.now())


def test_every_change__writes_an_audit_entry_with_actor(publisher):
    p = factories.policy("a", publish=False, user=publisher)
    services.policy_publish(policy=p, user=publisher, comment="go")
    key, _ = services.sdk_key_create(name="web", policies=[p], user=publisher)
    services.sdk_key_revoke(key=key, user=publisher)

    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor_label", "target"))
    assert actions == [
        ("policy.create", publisher.username, "a"),
        ("draft.save", publisher.username, "a:draft"),
        ("policy.publish", publisher.username, "a:v1"),
        ("key.create", publisher.username, f"key {key.prefix}"),
        ("key.revoke", publisher.username, f"key {key.prefix}"),
    ]


@pytest.mark.parametrize("role", ["viewer", "editor", None])
def test_publish_and_rollback__without_publisher_role__refused(make_user, role):
    user = make_user(role)
    p = factories.policy("a")
    factories.publish(p, factories.document(default_route="extraction"))
    services.draft_save(policy=p, document=factories.document(), user=None)

    with pytest.raises(NotAllowed):
        services.policy_publish(policy=p, user=user, comment="x")
    with pytest.raises(NotAllowed):
        services.policy_rollback(policy=p, to_number=1, user=user, comment="x")
    with pytest.raises(NotAllowed):
        services.sdk_key_create(name="k", policies=[p], user=user)
    p.refresh_from_db()
    assert p.live_version.number == 2


def test_editor__can_create_and_save_drafts(editor):
    factories.catalog()

    p = services.policy_create(slug="a", name="A", user=editor, document=factories.document())

    assert PolicyVersion.objects.get(policy=p).is_draft


def test_viewer__cannot_save_drafts(viewer):
    p = factories.policy("a")

    with pytest.raises(NotAllowed):
        services.draft_save(policy=p, document=factories.document(), user=viewer)


def test_policy_create__bad_slug__names_the_field():
    with pytest.raises(InvalidInput) as exc:
        services.policy_create(slug="Not A Slug!", name="x", user=None)

    assert "slug" in exc.value.errors
    assert not Policy.objects.exists()


def test_policy_create__duplicate_slug__conflict():
    factories.policy("a", publish=False)

    with pytest.raises(Conflict):
        services.policy_create(slug="a", name="again", user=None)


def test_sdk_key__stored_hashed_and_shown_once():
    p = factories.policy("a")

    key, secret = services.sdk_key_create(name="web", policies=[p], user=None)

    assert secret.startswith(f"sbx_{key.prefix}_")
    assert secret not in (key.hashed_secret, key.prefix)
    import hashlib

    assert key.hashed_secret == hashlib.sha256(secret.encode()).hexdigest()


def test_catalog_model_update__publisher__changes_tier_and_audits(publisher):
    factories.catalog()
    from routing.models import CatalogModel

    model = CatalogModel.objects.get(model_id="gpt-4o")

    services.catalog_model_update(model=model, tier=3, user=publisher)

    assert CatalogModel.objects.get(model_id="gpt-4o").tier == 3
    entry = AuditEntry.objects.get(action="catalog.update")
    assert (entry.target, entry.diff) == ("gpt-4o", [{"op": "changed", "path": "tier", "old": 2, "new": 3}])


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_catalog_model_update__without_publisher_role__refused(make_user, role):
    factories.catalog()
    from routing.models import CatalogModel

    with pytest.raises(NotAllowed):
        services.catalog_model_update(model=CatalogModel.objects.get(model_id="gpt-4o"), tier=3, user=make_user(role))
    assert CatalogModel.objects.get(model_id="gpt-4o").tier == 2


@pytest.mark.parametrize(
    ("comment", "field_error"),
    [("x" * 2001, "At most 2000 characters."), ("ok\x00", "the NUL character is not allowed")],
)
def test_comments__too_long_or_nul__refused_and_nothing_written(comment, field_error):
    p = factories.policy("a")
    key, _ = factories.sdk_key(p)
    factories.publish(p, factories.document(default_route="extraction"))

    for call in (
        lambda: services.policy_rollback(policy=p, to_number=1, user=None, comment=comment),
        lambda: services.sdk_key_revoke(key=key, user=None, comment=comment),
    ):
        with pytest.raises(InvalidInput) as exc:
            call()
        assert exc.value.errors == {"comment": [field_error]}
    p.refresh_from_db()
    key.refresh_from_db()
    assert (p.live_version.number, key.revoked_at) == (2, None)
