from django.urls import path

from routing import apis, client_api

client_urlpatterns = [
    path("policies/<str:slug>", client_api.client_policy_fetch, name="client-policy-fetch"),
]

api_urlpatterns = [
    path("policies/", apis.PolicyListApi.as_view(), name="policy-list"),
    path("policies/<str:slug>/", apis.PolicyDetailApi.as_view(), name="policy-detail"),
    path("policies/<str:slug>/versions/", apis.PolicyVersionListApi.as_view(), name="policy-versions"),
    path(
        "policies/<str:slug>/versions/<str:ref>/", apis.PolicyVersionDetailApi.as_view(), name="policy-version-detail"
    ),
    path("policies/<str:slug>/draft/", apis.PolicyDraftApi.as_view(), name="policy-draft"),
    path("policies/<str:slug>/publish/", apis.PolicyPublishApi.as_view(), name="policy-publish"),
    path("policies/<str:slug>/rollback/", apis.PolicyRollbackApi.as_view(), name="policy-rollback"),
    path("policies/<str:slug>/diff/", apis.PolicyDiffApi.as_view(), name="policy-diff"),
    path("policies/<str:slug>/preview/", apis.PolicyPreviewApi.as_view(), name="policy-preview"),
    path("policy-document/schema/", apis.PolicyDocumentSchemaApi.as_view(), name="policy-document-schema"),
    path("policy-document/validate/", apis.PolicyValidateApi.as_view(), name="policy-document-validate"),
    path("catalog/models/", apis.CatalogModelListApi.as_view(), name="catalog-list"),
    path("catalog/models/<path:model_id>/", apis.CatalogModelDetailApi.as_view(), name="catalog-detail"),
    path("keys/", apis.SdkKeyListApi.as_view(), name="key-list"),
    path("keys/<int:key_id>/revoke/", apis.SdkKeyRevokeApi.as_view(), name="key-revoke"),
    path("tokens/", apis.ApiTokenListApi.as_view(), name="token-list"),
    path("tokens/<int:token_id>/revoke/", apis.ApiTokenRevokeApi.as_view(), name="token-revoke"),
    path("audit/", apis.AuditListApi.as_view(), name="audit-list"),
]
