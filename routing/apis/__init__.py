"""The management API (DRF): policies, versions, the draft, publish, rollback, diff, preview,
catalog, SDK keys, API tokens and audit. One view per resource URL, each method with its own nested
serializers; writes go through `routing.services`, reads through `routing.selectors`.

One module per concept: `common` (what every view shares, metrics' API too), `policies`,
`documents` (preview, schema, validate), `catalog`, `keys`, `tokens` (management API tokens),
`audit`. The views and the shared pieces are importable from `routing.apis` itself."""

from routing.apis.audit import AuditListApi
from routing.apis.catalog import CatalogModelDetailApi, CatalogModelListApi
from routing.apis.common import (
    MAX_PAGE_LIMIT,
    MAX_PAGE_OFFSET,
    PAGE_PARAMETERS,
    CanViewAudit,
    CanViewCatalog,
    CanViewKeys,
    CanViewPolicies,
    StrictSerializer,
    can,
    check_body_size,
    page_of,
    paginate,
)
from routing.apis.documents import PolicyDocumentSchemaApi, PolicyPreviewApi, PolicyValidateApi
from routing.apis.keys import SdkKeyListApi, SdkKeyRevokeApi
from routing.apis.policies import (
    PolicyDetailApi,
    PolicyDiffApi,
    PolicyDraftApi,
    PolicyListApi,
    PolicyPublishApi,
    PolicyRollbackApi,
    PolicyVersionDetailApi,
    PolicyVersionListApi,
)
from routing.apis.tokens import ApiTokenListApi, ApiTokenRevokeApi

__all__ = [
    "MAX_PAGE_LIMIT",
    "MAX_PAGE_OFFSET",
    "PAGE_PARAMETERS",
    "ApiTokenListApi",
    "ApiTokenRevokeApi",
    "AuditListApi",
    "CanViewAudit",
    "CanViewCatalog",
    "CanViewKeys",
    "CanViewPolicies",
    "CatalogModelDetailApi",
    "CatalogModelListApi",
    "PolicyDetailApi",
    "PolicyDiffApi",
    "PolicyDocumentSchemaApi",
    "PolicyDraftApi",
    "PolicyListApi",
    "PolicyPreviewApi",
    "PolicyPublishApi",
    "PolicyRollbackApi",
    "PolicyValidateApi",
    "PolicyVersionDetailApi",
    "PolicyVersionListApi",
    "SdkKeyListApi",
    "SdkKeyRevokeApi",
    "StrictSerializer",
    "can",
    "check_body_size",
    "page_of",
    "paginate",
]
