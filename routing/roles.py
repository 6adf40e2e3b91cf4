"""The three roles, as Django groups (made by a data migration), and the permissions each holds."""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
EDITOR = "editor"
PUBLISHER = "publisher"
ROLES = (VIEWER, EDITOR, PUBLISHER)  # in increasing order of rights

_VIEW = [
    "view_policy",
    "view_policyversion",
    "view_catalogmodel",
    "view_modelprice",
    "view_sdkkey",
    "view_auditentry",
]
_EDIT = ["add_policy", "change_policy", "add_policyversion", "change_policyversion", "delete_policyversion"]
_PUBLISH = ["publish_policy", "add_sdkkey", "change_sdkkey", "change_catalogmodel", "add_modelprice"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: _VIEW,
    EDITOR: _VIEW + _EDIT,
    PUBLISHER: _VIEW + _EDIT + _PUBLISH,
}

# The permission each service checks, named once.
PERM_EDIT_POLICY = "routing.change_policy"
PERM_CREATE_POLICY = "routing.add_policy"
PERM_EDIT_DRAFT = "routing.change_policyversion"
PERM_PUBLISH = "routing.publish_policy"
PERM_MANAGE_KEYS = "routing.add_sdkkey"
PERM_EDIT_CATALOG = "routing.change_catalogmodel"


def role_groups_sync(group_model: Any, permission_model: Any) -> None:
    """Create or update the role groups (models passed in, so a migration can use its own)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(
            permission_model.objects.filter(content_type__app_label="routing", codename__in=codenames)
        )


# The permission that marks each role, highest first: a user's role is the highest they hold.
_ROLE_MARKS = ((PUBLISHER, PERM_PUBLISH), (EDITOR, PERM_EDIT_DRAFT), (VIEWER, "routing.view_policy"))


def role_of(user: Any) -> str | None:
    """The highest role `user` holds (superusers: publisher), or None."""
    if user is None or not getattr(user, "is_active", False):
        return None
    for role, perm in _ROLE_MARKS:
        if user.has_perm(perm):
            return role
    return None
