"""Who may act on alerts and channels, how an actor is named in an alert's history, and the free
text (notes, channel fields) an actor gives.

Permissions follow the role groups' routing permissions: whoever may view policies reads alerts
(viewer), whoever may edit policies acknowledges and resolves them (editor), whoever may publish
manages the notification channels (publisher).
"""

from __future__ import annotations

from typing import Any

from controlplane.errors import InvalidInput, NotAllowed

PERM_ALERTS_VIEW = "routing.view_policy"
PERM_ALERTS_HANDLE = "routing.change_policy"
PERM_CHANNELS_MANAGE = "routing.publish_policy"
SYSTEM = "system"

Actor = Any  # a user, or None for the system (the evaluator, management commands)


def require(user: Actor, perm: str, what: str) -> None:
    """Raise NotAllowed unless `user` (None: the system) holds `perm`; `what` completes the message."""
    if user is None:
        return
    if not getattr(user, "is_active", False) or not user.has_perm(perm):
        raise NotAllowed(f"You do not have permission to {what}.")


def actor_label(user: Actor) -> str:
    return SYSTEM if user is None else user.get_username()


def text_clean(value: Any, name: str, *, required: bool, max_length: int) -> str:
    """`value` stripped, or InvalidInput naming the field `name`."""
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise InvalidInput(f"'{name}' must be text.", {name: ["must be a string"]})
    if required and not text:
        raise InvalidInput(f"A {name} is required.", {name: ["This field is required."]})
    if len(text) > max_length:
        raise InvalidInput(f"The {name} is too long.", {name: [f"At most {max_length} characters."]})
    if "\x00" in text:
        raise InvalidInput(f"The {name} holds a NUL character.", {name: ["the NUL character is not allowed"]})
    return text
