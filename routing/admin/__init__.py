"""The Signalbox admin: policies (draft editor, thresholds, versions, publish and rollback), the
model catalog, SDK keys, API tokens and the audit log. Every write calls routing.services, which
checks the user's permission itself; the pages only hide buttons a user can't use.

One module per concept: `base` (PagesAdmin and the helpers every page shares), `documents` (the
document as the editor shows it), `policies` (the list and the policy page), `versions` (version,
diff, preview, publish, rollback and discard pages), `catalog`, `keys`, `tokens` (each user's
management API tokens), `audit`. Importing this package registers every ModelAdmin (Django's admin
autodiscovery imports `routing.admin`)."""

from routing.admin import audit, catalog, keys, policies, tokens
from routing.admin.base import badge

__all__ = ["audit", "badge", "catalog", "keys", "policies", "tokens"]
