"""Every write to routing's models, by concept: `policies` (policies, drafts, versions), `keys`
(SDK keys), `catalog` (the model catalog and its prices), `tokens` (management API tokens), over
`common` (actor, permission check, audit entry). Services check the actor's permission themselves,
so no path (admin, API, command) can skip it, and write an audit entry for each change. Callers use
`from routing import services` and `services.<name>`: the names below are the write surface."""

from __future__ import annotations

from routing.services.catalog import TIER_BY_INPUT_PRICE, CatalogImportReport, catalog_import, catalog_model_update
from routing.services.common import Actor
from routing.services.keys import SDK_KEY_PREFIX, sdk_key_create, sdk_key_hash, sdk_key_revoke
from routing.services.policies import (
    CONTROL_PLANE_ACTOR,
    document_check,
    draft_discard,
    draft_save,
    policy_create,
    policy_publish,
    policy_publish_document,
    policy_rollback,
    policy_update,
)
from routing.services.tokens import API_TOKEN_PREFIX, api_token_create, api_token_hash, api_token_revoke

__all__ = [
    "API_TOKEN_PREFIX",
    "CONTROL_PLANE_ACTOR",
    "SDK_KEY_PREFIX",
    "TIER_BY_INPUT_PRICE",
    "Actor",
    "CatalogImportReport",
    "api_token_create",
    "api_token_hash",
    "api_token_revoke",
    "catalog_import",
    "catalog_model_update",
    "document_check",
    "draft_discard",
    "draft_save",
    "policy_create",
    "policy_publish",
    "policy_publish_document",
    "policy_rollback",
    "policy_update",
    "sdk_key_create",
    "sdk_key_hash",
    "sdk_key_revoke",
]
