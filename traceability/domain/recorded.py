"""What the anomaly analyzer reads of a recorded event: the few fields of its canonical record its rules
look at, parsed straight from the stored bytes into :class:`Recorded`; the rest of the record (the operator,
the seal, the node and device, most of its key data) is skipped without building a value for it.

A field the rules only test for (``soldFrom``, ``transformationID``, ``credential``) or read for a few events
(``documents`` at an opening, ``production`` at a farm's) is kept as its raw JSON and parsed when asked for.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType


class Recorded(msgspec.Struct, gc=False):  # holds parsed JSON only: never part of a reference cycle
    """An event's canonical record as the analyzer sees it. Absent fields are ``UNSET`` (``None`` for those
    the rules read as empty when absent)."""

    type: Any = None
    quantity: Any = None
    attributes: Any = None
    action: Any = UNSET
    childEPCs: Any = UNSET
    parentID: Any = UNSET
    soldFrom: Raw | UnsetType = UNSET
    transformationID: Raw | UnsetType = UNSET
    credential: Raw | UnsetType = UNSET
    documents: Raw | UnsetType = UNSET
    production: Raw | UnsetType = UNSET

    def cut_from(self) -> bool:
        """A receipt's opening: a batch a sale cut from another, which carries the certificates upstream."""
        attrs = self.attributes
        return self.soldFrom is not UNSET or (isinstance(attrs, dict) and "soldFrom" in attrs)

    def serials(self) -> list[str]:
        """The drug serials it names (``attributes.serial`` and ``attributes.serials``)."""
        attrs = self.attributes or {}
        return [s for s in [attrs.get("serial"), *attrs.get("serials", [])] if isinstance(s, str)]

    def readings(self) -> Any:
        """Its cold-chain readings (``attributes.temperatures``), if any."""
        return (self.attributes or {}).get("temperatures")

    def document_types(self) -> set[str]:
        """The types of the documents it carries."""
        return set() if self.documents is UNSET else {d["type"] for d in msgspec.json.decode(self.documents)}

    def production_record(self) -> dict[str, Any]:
        """The farm's production record of an opening (empty when it has none)."""
        return (None if self.production is UNSET else msgspec.json.decode(self.production)) or {}


read = msgspec.json.Decoder(Recorded).decode
"""Parse canonical bytes into a :class:`Recorded` (``msgspec.ValidationError`` if they are not an object)."""
