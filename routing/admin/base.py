"""What every admin page of routing shares: PagesAdmin (pages of a ModelAdmin's own, their URLs,
context and object lookup), the diff table, refusal statuses and status badges."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from controlplane.errors import DomainError, NotAllowed


def error_lines(exc: DomainError) -> list[str]:
    """One line per path ("routes.a.escalate.min_confidence: 1.4 is greater than ..."), or the
    message when the error names no path."""
    lines = [f"{path}: {reason}" for path, reasons in exc.errors.items() for reason in reasons]
    return lines or [exc.message]


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    return text if len(text) <= 400 else text[:397] + "…"


def diff_rows(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """document_diff output shaped for the diff table template."""
    return [
        {
            "op": c["op"],
            "path": c["path"],
            "old": _compact(c["old"]) if "old" in c else "",
            "new": _compact(c["new"]) if "new" in c else "",
        }
        for c in changes
    ]


def render_diff(changes: list[dict[str, Any]], *, empty: str = "No differences.") -> SafeString:
    # The template escapes every value; render_to_string hands back an already-safe string.
    return SafeString(render_to_string("admin/routing/_diff_table.html", {"rows": diff_rows(changes), "empty": empty}))


def refusal_status(exc: DomainError) -> int:
    """The status a page answers a refused write with: 403 for a missing permission, else 200
    (the page shows why, with the user's input kept)."""
    return 403 if isinstance(exc, NotAllowed) else 200


def form_refusal(form: forms.Form, exc: DomainError) -> int:
    """Put a service's refusal on the form (on the field it names when the form has one) and
    return the page's status."""
    for field, reasons in exc.errors.items():
        form.add_error(field if field in form.fields else None, reasons)
    if not exc.errors:
        form.add_error(None, exc.message)
    return refusal_status(exc)


class PagesAdmin(admin.ModelAdmin):
    """A ModelAdmin with pages of its own: their URLs, base context and object lookup."""

    def _page_urls(self, *pages: tuple[str, Any, str]) -> list[Any]:
        """(route, view, name) → URL patterns named `<app>_<model>_<name>`, behind admin_view."""
        wrap = self.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [path(route, wrap(view), name=f"{prefix}_{name}") for route, view, name in pages]

    def _url(self, name: str, *args: Any) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{name}", args=args, current_app=self.admin_site.name
        )

    def _object_or_404(self, request: HttpRequest, object_id: str) -> Any:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _page_context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": True,
            **extra,
        }


def badge(text: str, kind: str) -> SafeString:
    return format_html('<span class="sb-badge sb-badge--{}">{}</span>', kind, text)
