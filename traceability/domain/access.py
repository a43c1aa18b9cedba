"""Who is asking, and what each role may see and do.

Roles: ``device`` (a scanner bound to one node), ``enterprise`` (an enterprise's own systems),
``regulator``, ``admin``; anyone without a credential is the public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    role: str
    id: int
    name: str
    enterprise_id: int | None = None
    uscc: str | None = None
    node_id: int | None = None
    node_code: str | None = None
    area_code: str | None = None
    operator_id: int | None = None
    operator_code: str | None = None
    kind: str = "token"
    """Where the principal comes from: ``token`` (an API credential), ``user`` (a console sign-in),
    ``device`` (a scanner's bearer credential) or ``station`` (a station's signed request)."""
    authority: str | None = None
    """The authority a regulator acts for (e.g. 徐州市市场监督管理局): what public records name."""

    @property
    def label(self) -> str:
        """What the request log names as the actor: role and id, never a secret."""
        return f"{self.role}:{self.id}"


PUBLIC_HIDDEN = ("commercial", "destination")
"""Event fields sealed out of the public record: prices and buyer identities."""


def split_private(content: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event's public fields and its private (commercial) fields."""
    if "commercial" not in content and "destination" not in content:  # most events: nothing to seal
        return dict(content), {}
    public = {k: v for k, v in content.items() if k not in PUBLIC_HIDDEN}
    private = {k: content[k] for k in PUBLIC_HIDDEN if k in content}
    return public, private


def sees_commercial(viewer: Principal | None, involved_enterprises: set[str]) -> bool:
    """Regulators and admins see prices and buyers; an enterprise sees them where it took part."""
    if viewer is None:
        return False
    if viewer.role in ("regulator", "admin"):
        return True
    return viewer.uscc is not None and viewer.uscc in involved_enterprises


def public_content(content: dict[str, Any]) -> dict[str, Any]:
    """An event's content without commercial details (prices, buyer identities)."""
    return {k: v for k, v in content.items() if k not in PUBLIC_HIDDEN}


def involved(content: dict[str, Any]) -> set[str]:
    """Enterprises an event names as source or destination."""
    out = set()
    for key in ("source", "destination"):
        party = content.get(key)
        if isinstance(party, dict) and isinstance(party.get("enterprise"), str):
            out.add(party["enterprise"])
    return out
