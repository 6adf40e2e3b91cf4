"""The Signalbox admin: policies (draft editor, thresholds, versions, publish and rollback), the
model catalog, SDK keys and the audit log. Every write calls routing.services, which checks the
user's permission itself; the pages only hide buttons a user can't use."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from controlplane.csp import allow_json_editor
from controlplane.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from routing import selectors, services
from routing.diff import document_diff
from routing.forms import (
    STARTER_DOCUMENT,
    CommentForm,
    DraftForm,
    PolicyAddForm,
    PolicyDetailsForm,
    PreviewForm,
    RevokeForm,
    SdkKeyCreateForm,
    ThresholdsForm,
    document_text,
)
from routing.models import AuditEntry, CatalogModel, ModelPrice, Policy, PolicyVersion, SdkKey
from routing.roles import PERM_EDIT_DRAFT, PERM_EDIT_POLICY, PERM_MANAGE_KEYS, PERM_PUBLISH
from signalbox_client import engine

# --- shared helpers ------------------------------------------------------------------------------


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


@lru_cache(maxsize=1)
def editor_schema() -> dict[str, Any]:
    """The policy schema in the JSON Schema dialect the editor's bundled validator (Ajv 6,
    draft-07) reads: `$defs` become `definitions`. The server still validates with the original."""
    text = json.dumps(engine.SCHEMA).replace('"#/$defs/', '"#/definitions/')
    schema = json.loads(text)
    schema["definitions"] = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def _schema_node(node: Any) -> dict[str, Any]:
    """Resolve a local `$ref` and merge the `properties` of `allOf` branches."""
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        node = {
            **engine.SCHEMA["$defs"].get(ref.rsplit("/", 1)[1], {}),
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    for branch in node.get("allOf", []):
        branch = _schema_node(branch)
        if "properties" in branch:
            node = {**node, "properties": {**branch["properties"], **node.get("properties", {})}}
    return node


def schema_ordered(value: Any, node: Any = None) -> Any:
    """The document with object keys in the schema's order (PostgreSQL's jsonb stores them
    sorted by length), so the editor reads top-down: schema_version, default_route, ... routes."""
    node = _schema_node(engine.SCHEMA if node is None else node)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        order = {key: i for i, key in enumerate(properties)}
        keys = sorted(value, key=lambda k: (order.get(k, len(order)),))
        extra = node.get("additionalProperties")
        return {k: schema_ordered(value[k], properties.get(k, extra if isinstance(extra, dict) else {})) for k in keys}
    if isinstance(value, list):
        return [schema_ordered(item, node.get("items", {})) for item in value]
    return value


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


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


# --- policies ------------------------------------------------------------------------------------


class PolicyChangeList(ChangeList):
    """Attaches each listed policy's newest audit entry, fetched in one query for the page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        last = selectors.policy_last_change([p.pk for p in self.result_list])
        for policy in self.result_list:
            policy.last_change = last.get(policy.pk)


@admin.register(Policy)
class PolicyAdmin(PagesAdmin):
    list_display = ["slug", "name", "live_column", "draft_column", "last_change_column", "last_author_column"]
    list_display_links = ["slug", "name"]
    search_fields = ["slug", "name"]
    list_per_page = 50

    # -- permissions: deleting a policy would break every client that fetches it
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Policy]:
        return selectors.policy_list_with_draft_revision()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PolicyChangeList

    # -- list columns
    @admin.display(description="Live", ordering="live_version__number")
    def live_column(self, obj: Policy) -> SafeString:
        if obj.live_version_id is None:
            return badge("nothing published", "none")
        return badge(f"v{obj.live_version.number}", "live")  # type: ignore[union-attr]

    @admin.display(description="Draft")
    def draft_column(self, obj: Policy) -> SafeString:
        revision = getattr(obj, "draft_revision", None)
        if revision is None:
            return badge("no", "none")
        return badge(f"yes · rev {revision}", "draft")

    @admin.display(description="Last change")
    def last_change_column(self, obj: Policy) -> SafeString | str:
        entry = getattr(obj, "last_change", None)
        if entry is None:
            return "—"
        when = timezone.localtime(entry.created_at)
        return format_html(
            '<span title="{}">{}</span> <span class="sb-muted">· {}</span>',
            when.isoformat(timespec="seconds"),
            when.strftime("%Y-%m-%d %H:%M"),
            entry.get_action_display(),
        )

    @admin.display(description="By")
    def last_author_column(self, obj: Policy) -> str:
        entry = getattr(obj, "last_change", None)
        return entry.actor_label if entry else "—"

    # -- URLs
    def get_urls(self) -> list[Any]:
        return [
            *self._page_urls(
                ("<path:object_id>/publish/", self.publish_view, "publish"),
                ("<path:object_id>/rollback/<int:number>/", self.rollback_view, "rollback"),
                ("<path:object_id>/versions/<int:number>/", self.version_view, "version"),
                ("<path:object_id>/versions/<int:number>/diff/", self.version_diff_view, "version_diff"),
                ("<path:object_id>/preview/", self.preview_view, "preview"),
                ("<path:object_id>/draft/discard/", self.discard_view, "discard"),
            ),
            *super().get_urls(),
        ]

    def _policy_or_404(self, request: HttpRequest, object_id: str) -> Policy:
        policy: Policy = self._object_or_404(request, object_id)
        return policy

    def _context(self, request: HttpRequest, policy: Policy | None, **extra: Any) -> dict[str, Any]:
        return self._page_context(
            request,
            policy=policy,
            original=policy,
            **self._permission_flags(request),
            policy_url=self._url("change", policy.pk) if policy else "",
            **extra,
        )

    @staticmethod
    def _permission_flags(request: HttpRequest) -> dict[str, bool]:
        return {
            "can_publish": request.user.has_perm(PERM_PUBLISH),
            "can_edit_draft": request.user.has_perm(PERM_EDIT_DRAFT),
            "can_edit_policy": request.user.has_perm(PERM_EDIT_POLICY),
        }

    # -- add
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PolicyAddForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                policy = services.policy_create(user=request.user, document=None, **form.cleaned_data)
            except DomainError as exc:
                status = form_refusal(form, exc)
            else:
                messages.success(request, f"Policy “{policy.slug}” created. Write its first draft below.")
                return redirect(self._url("change", policy.pk))
        context = self._context(request, None, title="Add policy", form=form)
        return TemplateResponse(request, "admin/routing/policy/add.html", context, status=status)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        url = reverse("admin:routing_auditentry_changelist", current_app=self.admin_site.name)
        return redirect(f"{url}?policy__id__exact={policy.pk}")

    # -- the policy page
    @allow_json_editor
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        if request.method != "POST":
            return self._render_page(request, policy)
        action = request.POST.get("_action")
        handler = {
            "details": self._post_details,
            "draft": self._post_draft,
            "thresholds": self._post_thresholds,
            "rebase": self._post_rebase,
        }.get(action or "")
        if handler is None:
            messages.error(request, "Unknown action.")
            return redirect(self._url("change", policy.pk))
        return handler(request, policy)

    def _render_page(
        self,
        request: HttpRequest,
        policy: Policy,
        *,
        status: int = 200,
        details_form: PolicyDetailsForm | None = None,
        draft_form: DraftForm | None = None,
        draft_errors: list[str] | None = None,
        draft_conflict: dict[str, Any] | None = None,
        thresholds_form: ThresholdsForm | None = None,
        thresholds_notice: str = "",
    ) -> HttpResponse:
        draft = selectors.policy_draft(policy)
        live = policy.live_version
        live_doc = live.document if live else None
        current_doc = draft.document if draft else live_doc
        stale = None
        if draft is not None and live is not None and draft.base_number != live.number:
            try:
                base_doc = selectors.policy_version_get(policy, draft.base_number).document if draft.base_number else {}
            except NotFound:
                base_doc = {}
            stale = {
                "base": draft.base_number or 0,
                "live": live.number,
                "diff": render_diff(document_diff(base_doc or {}, live_doc or {})),
            }
        if details_form is None:
            details_form = PolicyDetailsForm(initial={"name": policy.name, "description": policy.description})
        if draft_form is None:
            draft_form = DraftForm(
                initial={
                    "document": document_text(
                        schema_ordered(current_doc if current_doc is not None else STARTER_DOCUMENT)
                    ),
                    "expected_revision": draft.revision if draft else 0,
                }
            )
        if thresholds_form is None:
            thresholds_form = ThresholdsForm(
                document=current_doc, initial={"expected_revision": draft.revision if draft else 0}
            )
        if not request.user.has_perm(PERM_EDIT_DRAFT):
            for field in thresholds_form.fields.values():
                field.disabled = True
        versions = list(selectors.policy_versions(policy).defer("document", "models_snapshot"))
        audit = list(selectors.audit_list(policy=policy)[:8])
        context = self._context(
            request,
            policy,
            title=f"{policy.name}",
            subtitle=policy.slug,
            draft=draft,
            live=live,
            stale=stale,
            details_form=details_form,
            draft_form=draft_form,
            draft_errors=draft_errors or [],
            draft_conflict=draft_conflict,
            draft_vs_live=render_diff(
                document_diff(live_doc or {}, draft.document), empty="The draft equals the live version."
            )
            if draft
            else None,
            thresholds_form=thresholds_form,
            thresholds_notice=thresholds_notice,
            editor_schema=editor_schema(),
            versions=versions,
            audit=audit,
            audit_url=reverse("admin:routing_auditentry_changelist", current_app=self.admin_site.name)
            + f"?policy__id__exact={policy.pk}",
            editor_readonly=not request.user.has_perm(PERM_EDIT_DRAFT),
        )
        return TemplateResponse(request, "admin/routing/policy/policy_page.html", context, status=status)

    def _post_details(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        form = PolicyDetailsForm(request.POST)
        if form.is_valid():
            try:
                services.policy_update(policy=policy, user=request.user, **form.cleaned_data)
            except DomainError as exc:
                return self._render_page(request, policy, details_form=form, status=form_refusal(form, exc))
            messages.success(request, "Name and description saved.")
            return redirect(self._url("change", policy.pk))
        return self._render_page(request, policy, details_form=form)

    def _post_draft(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        form = DraftForm(request.POST)
        if not form.is_valid():
            lines = [f"{'document' if f == '__all__' else f}: {e}" for f, errs in form.errors.items() for e in errs]
            return self._render_page(request, policy, draft_form=form, draft_errors=lines)
        document = form.cleaned_data["document"]
        try:
            draft = services.draft_save(
                policy=policy, document=document, user=request.user, expected_revision=form.revision_to_expect()
            )
        except Conflict as exc:
            saved = selectors.policy_draft(policy)
            conflict = {
                "message": exc.message,
                "saved_revision": saved.revision if saved else None,
                "saved_author": saved.author if saved else None,
                "saved_at": saved.updated_at if saved else None,
                "diff": render_diff(document_diff(saved.document, document), empty="Your text equals the saved draft.")
                if saved
                else None,
            }
            return self._render_page(request, policy, draft_form=form, draft_conflict=conflict, status=409)
        except DomainError as exc:
            return self._render_page(
                request,
                policy,
                draft_form=form,
                draft_errors=error_lines(exc),
                status=refusal_status(exc),
            )
        messages.success(request, f"Draft saved (revision {draft.revision}).")
        return redirect(self._url("change", policy.pk) + "#draft")

    def _post_thresholds(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        draft = selectors.policy_draft(policy)
        live_doc = policy.live_version.document if policy.live_version else None
        current_doc = draft.document if draft else live_doc
        form = ThresholdsForm(request.POST, document=current_doc)
        if not form.is_valid():
            return self._render_page(request, policy, thresholds_form=form)
        document, changed = form.patched()
        if not changed:
            messages.info(request, "No threshold changed.")
            return redirect(self._url("change", policy.pk) + "#thresholds")
        try:
            saved = services.draft_save(
                policy=policy,
                document=document,
                user=request.user,
                expected_revision=form.cleaned_data.get("expected_revision") or 0,
            )
        except Conflict as exc:
            data = request.POST.copy()
            data["expected_revision"] = str(draft.revision if draft else 0)
            form = ThresholdsForm(data, document=current_doc)
            form.is_valid()
            notice = (
                f"{exc.message} Your values are kept below and now apply to the current draft "
                f"(revision {draft.revision if draft else 0}); check them and save again."
            )
            return self._render_page(request, policy, thresholds_form=form, thresholds_notice=notice, status=409)
        except DomainError as exc:
            for doc_path, reasons in exc.errors.items():
                field = next(
                    (name for p, name in form.field_by_path.items() if doc_path == p or doc_path.startswith(p + ".")),
                    None,
                )
                if field is None:
                    # An error on a parent object (e.g. a budget without limits) belongs to the
                    # field that created it.
                    field = next(
                        (
                            name
                            for p, name in form.field_by_path.items()
                            if p.startswith(doc_path + ".") and name in changed
                        ),
                        None,
                    )
                form.add_error(field, [f"{doc_path}: {r}" for r in reasons])
            if not exc.errors:
                form.add_error(None, exc.message)
            return self._render_page(request, policy, thresholds_form=form, status=refusal_status(exc))
        messages.success(
            request,
            f"Thresholds saved to the draft (revision {saved.revision}): "
            f"{len(changed)} value{'s' if len(changed) != 1 else ''} changed. "
            "Publish the draft to make them live.",
        )
        return redirect(self._url("change", policy.pk) + "#thresholds")

    def _post_rebase(self, request: HttpRequest, policy: Policy) -> HttpResponse:
        fallback = self._url("change", policy.pk)
        draft = selectors.policy_draft(policy)
        if draft is None:
            messages.error(request, "There is no draft to rebase.")
            return redirect(fallback)
        try:
            expected = int(request.POST.get("expected_revision") or draft.revision)
            services.draft_save(
                policy=policy, document=draft.document, user=request.user, expected_revision=expected, rebase=True
            )
        except (DomainError, ValueError) as exc:
            messages.error(request, exc.message if isinstance(exc, DomainError) else "Bad revision.")
        else:
            live = policy.live_version
            messages.success(
                request, f"The draft is now based on the live version{f' v{live.number}' if live else ''}."
            )
        return redirect(_safe_next(request, fallback))

    # -- versions
    def _version(self, policy: Policy, number: int) -> PolicyVersion:
        try:
            return selectors.policy_version_get(policy, number)
        except NotFound as exc:
            raise Http404(exc.message) from exc

    def version_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        version = self._version(policy, number)
        context = self._context(
            request,
            policy,
            title=f"{policy.slug} v{number}",
            crumb=f"v{number}",
            version=version,
            document=document_text(schema_ordered(version.document)),
        )
        return TemplateResponse(request, "admin/routing/policy/version.html", context)

    def version_diff_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        version = self._version(policy, number)
        live = policy.live_version
        changes = document_diff(live.document if live else {}, version.document)
        context = self._context(
            request,
            policy,
            title=f"{policy.slug}: live → v{number}",
            crumb=f"diff v{number}",
            version=version,
            live=live,
            diff=render_diff(changes, empty=f"v{number} equals the live version."),
        )
        return TemplateResponse(request, "admin/routing/policy/version_diff.html", context)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Try one request against the draft or the live version: the engine's decision and its reason."""
        policy = self._policy_or_404(request, object_id)
        has_draft = selectors.policy_draft(policy) is not None
        form = PreviewForm(
            request.GET if "task_type" in request.GET else None, initial={"version": "draft" if has_draft else "live"}
        )
        result, error = None, None
        if form.is_bound and form.is_valid():
            ref = form.cleaned_data["version"]
            try:
                version = selectors.policy_version_get(policy, ref)
                spend = form.cleaned_data.get("route_spend")
                state = None
                if spend is not None:
                    routes = (version.document.get("routes") or {}) if isinstance(version.document, dict) else {}
                    state = {"routes": {name: {"daily": spend} for name in routes}}
                result = selectors.policy_preview(policy, ref, request=form.request_fields(), state=state)
            except DomainError as exc:
                error = exc.message
            except engine.PolicyError as exc:
                error = f"This version's document is invalid: {exc}"
        context = self._context(
            request,
            policy,
            title=f"{policy.slug}: try a request",
            crumb="try a request",
            form=form,
            result=result,
            error=error,
            reason=json.dumps(result["decision"]["reason"], indent=2, sort_keys=True) if result else "",
        )
        return TemplateResponse(request, "admin/routing/policy/preview.html", context)

    # -- publish, rollback, discard
    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        form = CommentForm(request.POST or None)
        errors: list[str] = []
        conflict = None
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                version = services.policy_publish(
                    policy=policy,
                    user=request.user,
                    comment=form.cleaned_data["comment"],
                    expected_revision=form.cleaned_data["expected_revision"],
                )
            except DomainError as exc:
                status, errors, conflict = self._refusal(exc, form)
            else:
                messages.success(request, f"Published {policy.slug} v{version.number}; it is live now.")
                return redirect(self._url("change", policy.pk) + "#versions")
            policy.refresh_from_db()
        elif request.method == "POST":
            # The comment's errors show on its field; the hidden revision's need a line of their own.
            errors = [f"{name}: {e}" for name, errs in form.errors.items() if name != "comment" for e in errs]
        draft = selectors.policy_draft(policy)
        live = policy.live_version
        if request.method != "POST" and draft is not None:
            form = CommentForm(initial={"expected_revision": draft.revision})
        stale = draft is not None and draft.base_number != (live.number if live else None)
        context = self._context(
            request,
            policy,
            title=f"Publish {policy.slug}",
            crumb="Publish",
            draft=draft,
            live=live,
            form=form,
            errors=errors,
            conflict=conflict,
            stale=stale,
            diff=render_diff(
                document_diff(live.document if live else {}, draft.document), empty="The draft equals the live version."
            )
            if draft
            else None,
            next_number=policy.last_number + 1,
        )
        return TemplateResponse(request, "admin/routing/policy/publish.html", context, status=status)

    def rollback_view(self, request: HttpRequest, object_id: str, number: int) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        target = self._version(policy, number)
        form = CommentForm(request.POST or None)
        form.fields["comment"].widget.attrs["placeholder"] = "Why roll back? What went wrong?"
        errors: list[str] = []
        conflict = None
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                version = services.policy_rollback(
                    policy=policy, to_number=number, user=request.user, comment=form.cleaned_data["comment"]
                )
            except DomainError as exc:
                status, errors, conflict = self._refusal(exc, form)
            else:
                messages.success(request, f"Rolled back: v{version.number} (a copy of v{number}) is live now.")
                return redirect(self._url("change", policy.pk) + "#versions")
            policy.refresh_from_db()
        live = policy.live_version
        context = self._context(
            request,
            policy,
            title=f"Roll back {policy.slug} to v{number}",
            crumb=f"Roll back to v{number}",
            target=target,
            live=live,
            form=form,
            errors=errors,
            conflict=conflict,
            next_number=policy.last_number + 1,
            diff=render_diff(
                document_diff(live.document if live else {}, target.document),
                empty=f"v{number} equals the live version.",
            ),
        )
        return TemplateResponse(request, "admin/routing/policy/rollback.html", context, status=status)

    @staticmethod
    def _refusal(exc: DomainError, form: CommentForm) -> tuple[int, list[str], dict[str, Any] | None]:
        """Status, error lines and conflict details for a refused publish or rollback."""
        if isinstance(exc, InvalidInput) and "comment" in exc.errors:
            form.errors.pop("comment", None)
            form.add_error("comment", exc.errors["comment"])
            return 200, [exc.message], None
        if isinstance(exc, Conflict):
            changes = exc.extra.get("changes")
            return (
                409,
                [exc.message],
                {
                    "live_number": exc.extra.get("live_number"),
                    "diff": render_diff(changes) if changes is not None else None,
                },
            )
        status = exc.status_code if isinstance(exc, NotAllowed | NotFound) else 200
        return status, error_lines(exc) if isinstance(exc, InvalidInput) else [exc.message], None

    def discard_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        policy = self._policy_or_404(request, object_id)
        draft = selectors.policy_draft(policy)
        errors: list[str] = []
        status = 200
        if request.method == "POST":
            try:
                services.draft_discard(policy=policy, user=request.user)
            except DomainError as exc:
                errors = [exc.message]
                status = refusal_status(exc)
            else:
                messages.success(request, "Draft discarded.")
                return redirect(self._url("change", policy.pk))
        context = self._context(
            request,
            policy,
            title=f"Discard the draft of {policy.slug}",
            crumb="Discard draft",
            draft=draft,
            errors=errors,
        )
        return TemplateResponse(request, "admin/routing/policy/discard.html", context, status=status)


# --- catalog -------------------------------------------------------------------------------------


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    fields = ["effective_from", "input_per_mtok", "output_per_mtok", "source", "created_at"]
    readonly_fields = fields
    ordering = ["-effective_from"]
    extra = 0
    can_delete = False
    verbose_name = "price period"
    verbose_name_plural = "Price history (USD per 1M tokens, newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _current_price(model: CatalogModel) -> ModelPrice | None:
    now = timezone.now()
    return next((p for p in model.prices.all() if p.effective_from <= now), None)


def _money(value: Any) -> str:
    if value is None:
        return "—"
    whole, _, fraction = f"{value:.6f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = [
        "model_id",
        "provider",
        "tier_column",
        "context_column",
        "vision_column",
        "tools_column",
        "price_in",
        "price_out",
    ]
    list_filter = ["provider", "tier", "supports_vision", "supports_tools"]
    search_fields = ["model_id", "provider"]
    list_per_page = 100
    fields = [
        "model_id",
        "provider",
        "tier",
        "mode",
        "context_window",
        "max_output_tokens",
        "supports_vision",
        "supports_tools",
        "supports_response_schema",
        "supports_reasoning",
        "created_at",
        "updated_at",
    ]
    inlines = [ModelPriceInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f for f in self.fields if f != "tier"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CatalogModel]:
        return selectors.catalog_list()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the catalog comes from `manage.py catalog_import`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # published versions and decision logs refer to models by id

    def save_model(self, request: HttpRequest, obj: CatalogModel, form: Any, change: bool) -> None:
        services.catalog_model_update(model=obj, tier=obj.tier, user=request.user)

    @admin.display(description="Tier", ordering="tier")
    def tier_column(self, obj: CatalogModel) -> SafeString:
        return badge(f"tier {obj.tier}", f"tier{min(max(obj.tier, 1), 3)}")

    @admin.display(description="Vision", boolean=True, ordering="supports_vision")
    def vision_column(self, obj: CatalogModel) -> bool:
        return obj.supports_vision

    @admin.display(description="Tools", boolean=True, ordering="supports_tools")
    def tools_column(self, obj: CatalogModel) -> bool:
        return obj.supports_tools

    @admin.display(description="Context", ordering="context_window")
    def context_column(self, obj: CatalogModel) -> str:
        return f"{obj.context_window:,}" if obj.context_window else "—"

    @admin.display(description="In / 1M")
    def price_in(self, obj: CatalogModel) -> str:
        price = _current_price(obj)
        return _money(price.input_per_mtok if price else None)

    @admin.display(description="Out / 1M")
    def price_out(self, obj: CatalogModel) -> str:
        price = _current_price(obj)
        return _money(price.output_per_mtok if price else None)


# --- SDK keys ------------------------------------------------------------------------------------


_SECRET_SESSION_KEY = "routing.sdk_key_secret.{}"  # noqa: S105 - a session key name, not a secret


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SdkKey]) -> QuerySet[SdkKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(SdkKey)
class SdkKeyAdmin(PagesAdmin):
    list_display = [
        "name",
        "prefix_column",
        "policies_column",
        "created_at",
        "created_by",
        "last_used_at",
        "status_column",
    ]
    list_filter = [KeyStatusFilter, "policies"]
    search_fields = ["name", "prefix"]
    fields = [
        "name",
        "prefix_column",
        "policies_column",
        "created_by",
        "created_at",
        "last_used_at",
        "status_column",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SdkKey]:
        return selectors.sdk_key_list()

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_MANAGE_KEYS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_manage_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a key's hash, prefix and scope never change; revoke and create a new one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked keys stay for the audit trail

    @admin.display(description="Key")
    def prefix_column(self, obj: SdkKey) -> SafeString:
        return format_html('<code class="sb-code">{}{}_…</code>', services.SDK_KEY_PREFIX, obj.prefix)

    @admin.display(description="Policies")
    def policies_column(self, obj: SdkKey) -> SafeString:
        return format_html_join(" ", '<span class="sb-chip">{}</span>', ((p.slug,) for p in obj.policies.all()))

    @admin.display(description="Status", ordering="revoked_at")
    def status_column(self, obj: SdkKey) -> SafeString:
        if obj.revoked_at:
            return badge(f"revoked {timezone.localtime(obj.revoked_at):%Y-%m-%d}", "revoked")
        return badge("active", "live")

    def get_urls(self) -> list[Any]:
        return [
            *self._page_urls(
                ("<path:object_id>/created/", self.created_view, "created"),
                ("<path:object_id>/revoke/", self.revoke_view, "revoke"),
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        form = SdkKeyCreateForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                key, secret = services.sdk_key_create(user=request.user, **form.cleaned_data)
            except DomainError as exc:
                status = form_refusal(form, exc)
            else:
                # Kept in the session only until the result page shows it, once.
                request.session[_SECRET_SESSION_KEY.format(key.pk)] = secret
                return redirect(self._url("created", key.pk))
        elif request.method != "POST" and not self.has_add_permission(request):
            raise PermissionDenied
        context = self._page_context(request, title="Create an SDK key", form=form)
        return TemplateResponse(request, "admin/routing/sdkkey/add.html", context, status=status)

    def created_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._object_or_404(request, object_id)
        secret = request.session.pop(_SECRET_SESSION_KEY.format(key.pk), None)
        context = self._page_context(
            request,
            title="SDK key created" if secret else "SDK key",
            key=key,
            secret=secret,
            key_url=self._url("change", key.pk),
        )
        response = TemplateResponse(request, "admin/routing/sdkkey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {
            **(extra_context or {}),
            "can_manage_keys": self.has_manage_permission(request),
            "revoke_url": self._url("revoke", object_id),
        }
        return super().change_view(request, object_id, form_url, extra)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._object_or_404(request, object_id)
        form = RevokeForm(request.POST or None)
        errors: list[str] = []
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                services.sdk_key_revoke(key=key, user=request.user, comment=form.cleaned_data["comment"])
            except DomainError as exc:
                errors = [exc.message]
                status = refusal_status(exc)
            else:
                messages.success(request, f"Key “{key.name}” revoked; clients using it are refused within a minute.")
                return redirect(self._url("change", key.pk))
        context = self._page_context(
            request, title=f"Revoke “{key.name}”", keys=[key], form=form, errors=errors, single=True
        )
        return TemplateResponse(request, "admin/routing/sdkkey/revoke.html", context, status=status)

    @admin.action(description="Revoke selected keys", permissions=["manage"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[SdkKey]) -> HttpResponse | None:
        keys = list(queryset)
        form = RevokeForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            context = self._page_context(
                request,
                title="Revoke SDK keys",
                keys=keys,
                form=form,
                errors=[],
                single=False,
                queryset_ids=[k.pk for k in keys],
                action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            )
            return TemplateResponse(request, "admin/routing/sdkkey/revoke.html", context)
        done = 0
        for key in keys:
            try:
                services.sdk_key_revoke(key=key, user=request.user, comment=form.cleaned_data["comment"])
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{key.name}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"Revoked {done} key{'s' if done != 1 else ''}.", messages.SUCCESS)
        return None


# --- audit log -----------------------------------------------------------------------------------


_ACTION_KIND = {
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
    fields = ["created_at", "actor_label", "action", "policy", "target", "comment", "diff_table"]
    readonly_fields = fields
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
