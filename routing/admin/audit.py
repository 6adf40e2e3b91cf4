"""The audit log admin: read-only, every change with its actor, action, target, comment and diff."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from routing import selectors
from routing.admin.base import badge, render_diff
from routing.models import AuditEntry

_ACTION_KIND: dict[str, str] = {
    AuditEntry.Action.PUBLISH: "live",
    AuditEntry.Action.ROLLBACK: "rollback",
    AuditEntry.Action.DRAFT_SAVE: "draft",
    AuditEntry.Action.DRAFT_DISCARD: "none",
    AuditEntry.Action.KEY_REVOKE: "revoked",
}


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["time_column", "actor_column", "action_column", "target_column", "comment_column"]
    list_display_links = ["time_column"]
    list_filter = ["action", "policy"]
    search_fields = ["target", "comment", "actor_label"]
    date_hierarchy = "created_at"
    fields = readonly_fields = ("created_at", "actor_label", "action", "policy", "target", "comment", "diff_table")
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return selectors.audit_list()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Time", ordering="created_at")
    def time_column(self, obj: AuditEntry) -> str:
        return f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="Actor", ordering="actor_label")
    def actor_column(self, obj: AuditEntry) -> str:
        return obj.actor_label

    @admin.display(description="Target", ordering="target")
    def target_column(self, obj: AuditEntry) -> SafeString:
        return format_html('<code class="sb-code">{}</code>', obj.target)

    @admin.display(description="Action", ordering="action")
    def action_column(self, obj: AuditEntry) -> SafeString:
        return badge(obj.get_action_display(), _ACTION_KIND.get(obj.action, "info"))

    @admin.display(description="Comment")
    def comment_column(self, obj: AuditEntry) -> str:
        return obj.comment if len(obj.comment) <= 90 else obj.comment[:89] + "…"

    @admin.display(description="Diff")
    def diff_table(self, obj: AuditEntry) -> SafeString:
        return render_diff(obj.diff or [], empty="No document changes recorded.")
