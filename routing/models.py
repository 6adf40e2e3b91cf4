"""Routing policies and their versions, the model catalog with its price history, SDK keys and
the audit log."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from routing.roles import PUBLISHER, ROLES

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SLUG_RE = re.compile(SLUG_PATTERN)
SLUG_VALIDATOR = RegexValidator(
    SLUG_PATTERN,
    "Use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
)


class Policy(models.Model):
    """A routing policy: a named, versioned document clients fetch by its slug."""

    slug = models.CharField(max_length=63, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    live_version = models.OneToOneField(
        "PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The last number handed to a published version; publishing takes the row lock and bumps it.
    last_number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "policies"
        permissions = [("publish_policy", "Can publish and roll back policies")]

    def __str__(self) -> str:
        return self.slug


class PolicyVersion(models.Model):
    """One version of a policy's document: the single draft, or an immutable published version."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.PositiveIntegerField(null=True, blank=True)
    document = models.JSONField()
    # The catalog facts the client engine needs (provider, context window, capabilities, prices),
    # frozen at publish time so a published version never changes under a client.
    models_snapshot = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A draft records the live version it started from; publishing on a stale base is refused.
    base_number = models.PositiveIntegerField(null=True, blank=True)
    # Bumped on every draft save, so two editors saving the same draft can't overwrite each other.
    revision = models.PositiveIntegerField(default=1)
    rollback_of = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policyversion_unique_number"),
            models.UniqueConstraint(fields=["policy"], condition=Q(status="draft"), name="policyversion_one_draft"),
            models.CheckConstraint(
                condition=(Q(status="draft", number__isnull=True, published_at__isnull=True))
                | (Q(status="published", number__isnull=False, published_at__isnull=False)),
                name="policyversion_number_iff_published",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}:v{self.number}" if self.number else f"{self.policy_id}:draft"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk and not self._state.adding:
            stored = PolicyVersion.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored == self.Status.PUBLISHED:
                raise ValidationError("A published version is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.status == self.Status.PUBLISHED:
            raise ValidationError("A published version is immutable.")
        return super().delete(*args, **kwargs)

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def label(self) -> str:
        return f"v{self.number}" if self.number else "draft"


class CatalogModel(models.Model):
    """An LLM a policy can route to, with the facts the engine's capability guard needs."""

    model_id = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=100, db_index=True)
    tier = models.PositiveSmallIntegerField(
        default=2, help_text="1 = cheap/fast, 2 = standard, 3 = strongest. Set by price on import."
    )
    mode = models.CharField(max_length=40, default="chat")
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    supports_vision = models.BooleanField(default=False)
    supports_tools = models.BooleanField(default=False)
    supports_response_schema = models.BooleanField(default=False)
    supports_reasoning = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model_id"]
        verbose_name = "catalog model"

    def __str__(self) -> str:
        return self.model_id


class ModelPrice(models.Model):
    """A price period: USD per 1M tokens in force from `effective_from` until the next period."""

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="prices")
    input_per_mtok = models.DecimalField(max_digits=14, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=14, decimal_places=6)
    effective_from = models.DateTimeField()
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="modelprice_unique_period"),
            models.CheckConstraint(
                condition=Q(input_per_mtok__gte=0) & Q(output_per_mtok__gte=0),
                name="modelprice_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} from {self.effective_from:%Y-%m-%d}"


class SdkKey(models.Model):
    """A client SDK's credential. Only a SHA-256 hash of the secret is stored."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, help_text="Visible part of the key.")
    hashed_secret = models.CharField(max_length=64, unique=True)
    policies = models.ManyToManyField(Policy, related_name="sdk_keys")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "SDK key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditEntry(models.Model):
    """One change: who, when, what, why, and the diff."""

    class Action(models.TextChoices):
        POLICY_CREATE = "policy.create", "Policy created"
        POLICY_UPDATE = "policy.update", "Policy updated"
        DRAFT_SAVE = "draft.save", "Draft saved"
        DRAFT_DISCARD = "draft.discard", "Draft discarded"
        PUBLISH = "policy.publish", "Published"
        ROLLBACK = "policy.rollback", "Rolled back"
        KEY_CREATE = "key.create", "SDK key created"
        KEY_REVOKE = "key.revoke", "SDK key revoked"
        CATALOG_IMPORT = "catalog.import", "Catalog imported"
        CATALOG_UPDATE = "catalog.update", "Catalog model updated"
        REPORT_REVIEW = "report.review", "Monthly report reviewed"
        TOKEN_CREATE = "token.create", "API token created"
        TOKEN_REVOKE = "token.revoke", "API token revoked"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username at the time.")
    # The API token the actor acted through, if any (its name is in actor_label too).
    api_token = models.ForeignKey("ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    policy = models.ForeignKey(Policy, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    target = models.CharField(max_length=255, help_text="What changed, e.g. 'checkout:v7'.")
    comment = models.TextField(blank=True)
    diff = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class ApiToken(models.Model):
    """A management API token (`Authorization: Token <key>`). Only a SHA-256 hash of the key is
    stored; the key is shown once when made (admin, API or `manage.py api_token_create`).

    A token acts as its user, narrowed to its role (the permissions of that role's group) and, when
    `policies` holds any, to those policies. Environment scope (issue #15, part 1) belongs beside
    `policies`, checked in `routing.authentication.token_scope_check`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200, blank=True, help_text="What the token is for, e.g. 'ci-deploy'.")
    role = models.CharField(max_length=20, choices=[(r, r) for r in ROLES], default=PUBLISHER)
    policies = models.ManyToManyField(
        Policy, blank=True, related_name="+", help_text="The policies it may reach; none: every policy."
    )
    prefix = models.CharField(max_length=16, help_text="Visible start of the key, to tell tokens apart.")
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Written at most once per routing.authentication.LAST_USED_RESOLUTION, not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…)"

    @property
    def label(self) -> str:
        """How the audit log names the token."""
        return f"token {self.name or '(unnamed)'} {self.prefix}"
