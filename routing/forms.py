"""Forms of the routing admin pages. They parse and shape input; every write goes through
routing.services, which also decides what is valid (the policy schema lives in the engine)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from routing.models import SLUG_VALIDATOR, Policy
from routing.roles import ROLES, VIEWER

# A new policy's draft starts from this skeleton, so the editor never opens on an empty page.
STARTER_DOCUMENT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "general",
    "task_types": {},
    "routes": {"general": {"tiers": [{"model": "gpt-4o-mini"}]}},
}


def document_text(document: Any) -> str:
    """The document as the editor shows it: pretty-printed, keys in their stored order."""
    return json.dumps(document, indent=2, ensure_ascii=False)


class PolicyAddForm(forms.Form):
    slug = forms.CharField(
        max_length=63,
        validators=[SLUG_VALIDATOR],
        help_text="Clients fetch the policy by this name. It can't be changed later.",
    )
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class PolicyDetailsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class DraftForm(forms.Form):
    """The policy document as JSON text. The JSON editor writes into the same textarea, so the
    form works without JavaScript."""

    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false", "class": "sb-document-text"}),
        strip=False,
    )
    expected_revision = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)
    # Set when the editor chose to save over a draft someone else saved meanwhile.
    overwrite_revision = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def clean_document(self) -> Any:
        text = self.cleaned_data["document"]
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc

    def revision_to_expect(self) -> int:
        """The draft revision this save is based on (0: there was no draft)."""
        data = self.cleaned_data
        if data.get("overwrite_revision"):
            return int(data["overwrite_revision"])
        return int(data.get("expected_revision") or 0)


class CommentForm(forms.Form):
    """The required reason for a publish or a rollback (the service insists on it too)."""

    comment = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "placeholder": "Why is this change going live?"}),
        help_text="Required. Shown in the version history and the audit log.",
    )
    expected_revision = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)


class RevokeForm(forms.Form):
    comment = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80, "placeholder": "Optional: why is this key revoked?"}),
    )


class SdkKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Which application or service uses the key.")
    policies = forms.ModelMultipleChoiceField(
        queryset=Policy.objects.order_by("slug"),
        widget=forms.CheckboxSelectMultiple,
        help_text="The key can fetch only these policies.",
    )


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What the token is for, e.g. ci-deploy.")
    role = forms.ChoiceField(
        choices=[(r, r) for r in ROLES],
        initial=VIEWER,
        widget=forms.RadioSelect,
        help_text="What it may do: viewer reads, editor saves drafts, publisher publishes and rolls back. "
        "At most your own role.",
    )
    policies = forms.ModelMultipleChoiceField(
        queryset=Policy.objects.order_by("slug"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave empty to reach every policy.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Optional, e.g. 2027-06-30 00:00 (UTC); empty: never expires.",
        widget=forms.DateTimeInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
    )


# --- per-route thresholds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A number in each route that a platform engineer tunes without touching JSON."""

    key: str
    label: str
    path: tuple[str | int, ...]  # inside the route object
    help: str
    integer: bool = False


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(
        "min_confidence",
        "Escalate below confidence",
        ("escalate", "min_confidence"),
        "Escalate to the next tier when the answer's confidence is below this (0–1).",
    ),
    Threshold(
        "downgrade_at",
        "Budget downgrade at",
        ("budget", "downgrade_at"),
        "Fraction of the budget (0–1] from which non-critical requests start a tier "
        "lower. Needs a daily or monthly budget in the document.",
    ),
    Threshold(
        "band_min",
        "Band tier 1→2: min",
        ("expectations", "escalation_bands", 0, "min"),
        "Lowest expected share of requests escalating from tier 1 to 2 (0–1).",
    ),
    Threshold(
        "band_max",
        "Band tier 1→2: max",
        ("expectations", "escalation_bands", 0, "max"),
        "Highest expected share of requests escalating from tier 1 to 2 (0–1).",
    ),
    Threshold(
        "max_cost",
        "Max cost / request (USD)",
        ("expectations", "max_cost_per_request_usd"),
        "Alert when the average cost per request goes above this.",
    ),
    Threshold(
        "latency_budget_ms",
        "Latency budget (ms)",
        ("latency_budget_ms",),
        "Total time for one request across cascade and fallback steps.",
        integer=True,
    ),
)


def _get(obj: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, list) or len(obj) <= part:
                return None
            obj = obj[part]
        else:
            if not isinstance(obj, dict) or part not in obj:
                return None
            obj = obj[part]
    return obj


def threshold_field_name(route: str, key: str) -> str:
    return f"{route}__{key}"


def threshold_document_path(route: str, threshold: Threshold) -> str:
    """The dotted path the engine reports errors under (list indexes as numbers)."""
    return ".".join(str(p) for p in ("routes", route, *threshold.path))


class ThresholdsForm(forms.Form):
    """One fieldset per route of `document`. A blank field removes the key from the document."""

    expected_revision = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args: Any, document: dict[str, Any] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.document = document or {}
        routes = self.document.get("routes") if isinstance(self.document, dict) else None
        self.routes: list[str] = list(routes) if isinstance(routes, dict) else []
        self.field_by_path: dict[str, str] = {}
        for route in self.routes:
            route_doc = routes[route] if isinstance(routes[route], dict) else {}  # type: ignore[index]  # routes is a dict here
            for threshold in THRESHOLDS:
                name = threshold_field_name(route, threshold.key)
                current = _get(route_doc, threshold.path)
                field: forms.Field = forms.FloatField(
                    required=False,
                    label=threshold.label,
                    help_text=threshold.help,
                    widget=forms.NumberInput(attrs={"step": "any", "class": "sb-num"}),
                )
                self.fields[name] = field
                if isinstance(current, int | float) and not isinstance(current, bool):
                    self.initial[name] = current
                self.field_by_path[threshold_document_path(route, threshold)] = name

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(route, [self[threshold_field_name(route, t.key)] for t in THRESHOLDS]) for route in self.routes]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # forms.Form.clean returns cleaned_data
        for route in self.routes:
            lo = data.get(threshold_field_name(route, "band_min"))
            hi = data.get(threshold_field_name(route, "band_max"))
            if (lo is None) != (hi is None):
                missing = "band_max" if hi is None else "band_min"
                self.add_error(
                    threshold_field_name(route, missing), "Set both ends of the band, or clear both to remove it."
                )
            elif lo is None and hi is None:
                bands = _get(self.document, ("routes", route, "expectations", "escalation_bands"))
                if isinstance(bands, list) and len(bands) > 1:
                    self.add_error(
                        threshold_field_name(route, "band_min"),
                        "Later tier bands exist; edit them in the JSON editor instead.",
                    )
        return data

    def patched(self) -> tuple[dict[str, Any], list[str]]:
        """Return a copy of the document with the changed thresholds applied, and the changed
        field names. Unchanged values are left exactly as stored (no 1 -> 1.0 noise)."""
        doc = copy.deepcopy(self.document)
        changed: list[str] = []
        for route in self.routes:
            route_doc = doc["routes"][route]
            if not isinstance(route_doc, dict):
                continue
            for threshold in THRESHOLDS:
                name = threshold_field_name(route, threshold.key)
                new = self.cleaned_data.get(name)
                if new is not None and threshold.integer and float(new).is_integer():
                    new = int(new)
                current = _get(route_doc, threshold.path)
                if new is None and current is None:
                    continue
                if (
                    new is not None
                    and isinstance(current, int | float)
                    and not isinstance(current, bool)
                    and current == new
                ):
                    continue
                changed.append(name)
                if threshold.key.startswith("band_"):
                    _set_band(route_doc, str(threshold.path[-1]), new)
                else:
                    _set_path(route_doc, threshold.path, new)
        return doc, changed


def _set_path(obj: dict[Any, Any], path: tuple[str | int, ...], value: Any) -> None:
    *parents, last = path
    for part in parents:
        child = obj.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = {}
            obj[part] = child
        obj = child
    if value is None:
        obj.pop(last, None)
    else:
        obj[last] = value


def _set_band(route_doc: dict[str, Any], end: str, value: float | None) -> None:
    expectations = route_doc.get("expectations")
    if value is None:
        if not isinstance(expectations, dict):
            return
        bands = expectations.get("escalation_bands")
        if isinstance(bands, list) and bands and isinstance(bands[0], dict):
            bands[0].pop(end, None)
            if not bands[0]:
                bands.pop(0)
            if not bands:
                expectations.pop("escalation_bands")
        return
    if not isinstance(expectations, dict):
        expectations = route_doc["expectations"] = {}
    bands = expectations.get("escalation_bands")
    if not isinstance(bands, list):
        bands = expectations["escalation_bands"] = []
    if not bands or not isinstance(bands[0], dict):
        bands[:1] = [{}]
    bands[0][end] = value


class PreviewForm(forms.Form):
    """One request to try against a version: the fields rules, scores and the guard read."""

    version = forms.ChoiceField(label="Against", choices=[("draft", "the draft"), ("live", "the live version")])
    task_type = forms.CharField(max_length=200)
    prompt_tokens = forms.IntegerField(min_value=0, max_value=100_000_000, initial=1000)
    context_tokens = forms.IntegerField(
        min_value=0, max_value=100_000_000, required=False, help_text="Prompt + expected output; blank = prompt tokens."
    )
    text = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Prompt text for keyword rules and the difficulty heuristic.",
    )
    score = forms.FloatField(required=False, min_value=0, max_value=1, help_text="Difficulty 0-1; blank = none.")
    user_tier = forms.CharField(required=False, max_length=100)
    user_id = forms.CharField(required=False, max_length=200, help_text="Split key for sticky experiments.")
    risk = forms.CharField(required=False, max_length=100)
    latency_class = forms.ChoiceField(
        required=False, choices=[("", "—"), ("interactive", "interactive"), ("batch", "batch")]
    )
    needs_tools = forms.BooleanField(required=False)
    needs_vision = forms.BooleanField(required=False)
    critical = forms.BooleanField(required=False)
    route_spend = forms.FloatField(
        required=False,
        min_value=0,
        max_value=10,
        label="Route budget spent",
        help_text="Fraction of the route's budget spent (0.85 = 85%), to see a downgrade.",
    )

    def request_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "task_type",
                "prompt_tokens",
                "context_tokens",
                "text",
                "score",
                "user_tier",
                "user_id",
                "risk",
                "latency_class",
                "needs_tools",
                "needs_vision",
                "critical",
            )
            if data.get(name) not in (None, "")
        }
