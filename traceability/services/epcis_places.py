"""Where checked EPCIS events happened: nodes by GLN, and whether the credential may record there.

A device records at its own node; an enterprise credential at its own enterprise's nodes. The node is
the event's business location, else its read point, found by GLN; an event naming neither is recorded
at the credential's own node when it has exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from traceability import errors
from traceability.domain.access import Principal
from traceability.epcis import identifiers
from traceability.services.epcis_prepared import EventFailed, Prepared
from traceability.storage import epcis_repo
from traceability.storage.database import Connection


def _failed(p: Prepared, error: errors.TraceError) -> errors.TraceError:
    return EventFailed(p.index, error)


@dataclass(slots=True)
class Places:
    """Nodes by GLN for every place the events name, and the credential's own nodes."""

    principal: Principal
    by_gln: dict[str, Any]
    own: list[Any]

    @classmethod
    async def load(cls, conn: Connection, principal: Principal, prepared: Sequence[Prepared]) -> Places:
        glns: set[str] = set()
        for p in prepared:
            f = p.facets
            uris = [f.read_point, f.biz_location]
            if f.sources:
                uris.extend(u for _, u in f.sources)
            if f.destinations:
                uris.extend(u for _, u in f.destinations)
            for uri in uris:
                if uri and (gln := identifiers.location_gln(uri)):
                    glns.add(gln)
        by_gln = await epcis_repo.nodes_by_gln(conn, sorted(glns))
        if principal.role == "device" and principal.node_id is not None:
            # The credential already says where the device is: no need to ask the database.
            own: list[Any] = [
                {
                    "id": principal.node_id,
                    "code": principal.node_code,
                    "area_code": principal.area_code,
                    "enterprise_id": principal.enterprise_id,
                    "uscc": principal.uscc,
                    "gln": None,
                }
            ]
        elif principal.enterprise_id is not None:
            own = await epcis_repo.nodes_of_enterprise(conn, principal.enterprise_id)
        else:
            own = []
        return cls(principal, by_gln, own)

    def _may_record_at(self, node: Any) -> bool:
        if self.principal.role == "device":
            return bool(node["id"] == self.principal.node_id)
        return bool(node["enterprise_id"] == self.principal.enterprise_id)

    def node_of(self, p: Prepared) -> Any:
        """The node an event happened at: its business location, else its read point, else the credential's own."""
        f = p.facets
        node = None
        for key, uri in (("bizLocation.id", f.biz_location), ("readPoint.id", f.read_point)):
            if not uri:
                continue
            gln = identifiers.location_gln(uri)
            if gln is None:
                continue
            found = self.by_gln.get(gln)
            if found is None:
                raise _failed(
                    p,
                    errors.UnknownReference(
                        f"{p.where(key)}: no registered node has GLN {gln}; register the location first",
                        field=p.where(key),
                    ),
                )
            if not self._may_record_at(found):
                whose = "this device's node" if self.principal.role == "device" else "this enterprise's nodes"
                raise _failed(
                    p,
                    errors.CustodyRefused(
                        "not_own_node",
                        f"{p.where(key)}: GLN {gln} is node {found['code']}, not one of {whose}",
                        field=p.where(key),
                    ),
                )
            node = node or found
        if node is not None:
            return node
        if len(self.own) == 1:
            return self.own[0]
        where = p.where("bizLocation")
        raise _failed(
            p,
            errors.InvalidField(
                f"{where}: name the place by its GLN (readPoint or bizLocation); this credential records at "
                f"{len(self.own)} nodes",
                field=where,
            ),
        )

    def party(self, pairs: Sequence[tuple[str, str]]) -> dict[str, str] | None:
        """The first source or destination that is a registered node, as ``{"node", "enterprise"}``."""
        ranked = sorted(
            pairs,
            key=lambda t: (
                ("location", "possessing_party", "owning_party").index(t[0])
                if t[0] in ("location", "possessing_party", "owning_party")
                else 3
            ),
        )
        for _, uri in ranked:
            gln = identifiers.location_gln(uri)
            if gln and (node := self.by_gln.get(gln)) is not None:
                return {"node": node["code"], "enterprise": node["uscc"]}
        return None
