"""The CBV 2.0 event hash: the eventID an event gets when it arrives without one.

``ni:///sha-256;{hex}?ver=CBV2.0`` is SHA-256 over the event's pre-hash string (CBV 2.0, section 8.9):
its fields in a fixed order, values normalised (times to UTC milliseconds, EPCs to Digital Link form,
CBV values to web URIs), so the same event written in JSON-LD or XML, with URNs or Digital Links,
gets the same id. The computation is GS1's reference implementation, the ``epcis-event-hash-generator``
package. It expands JSON-LD with PyLD; the two EPCIS contexts it needs ship inside that package, and
any other context URL is refused here rather than fetched from the network.

The reference implementation keeps module-level state, so calls are serialised with a lock.
"""

from __future__ import annotations

import copy
import importlib.resources
import threading
from typing import Any

import orjson
from epcis_event_hash_generator import file_document_loader, hash_generator, json_to_py, xml_to_py
from lxml import etree
from pyld import jsonld


class HashError(ValueError):
    """The event hash could not be computed (for instance an ``@context`` URL this server does not hold)."""


_LOCK = threading.Lock()
_PACKAGE = "epcis_event_hash_generator"
_CONTEXT_FILES = {
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld": (
        "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"
    ),
    "https://gs1.github.io/EPCIS/epcis-context.jsonld": (
        "14b10c9d3e92d35f577bfc610fe5ec15aa2941124987919389d7cd9998516861.jsonld"
    ),
    # The unversioned address GS1 keeps for the current 2.x context, which most documents now name. The hash
    # reads a context only to expand bare CBV values (bizStep "receiving" and the like), whose terms are the
    # same in every 2.x context.
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld": (
        "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"
    ),
}
_contexts: dict[str, Any] = {}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _offline_loader(url: str, options: Any = None) -> dict[str, Any]:
    name = _CONTEXT_FILES.get(url)
    if name is None:
        raise jsonld.JsonLdError(
            f"the JSON-LD context {url} is not one this server holds",
            "jsonld.LoadDocumentError",
            code="loading document failed",
        )
    if url not in _contexts:
        _contexts[url] = orjson.loads(importlib.resources.files(_PACKAGE).joinpath(name).read_bytes())
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": _contexts[url]}


assert file_document_loader  # imported so that the package's own (networked) loader is set first, then replaced
jsonld.set_document_loader(_offline_loader)


def _collect_namespaces(context: Any) -> None:
    """The reference's reading of a context's prefixes, for the extension names of the pre-hash string.

    The reference's own (``json_to_py._collect_namespaces_from_jsonld_context``) takes every member of a
    context object for a prefix and its IRI, and fails on a valid context that also defines a term with an
    object, such as ``"rail:trainAxleCount": {"@type": "xsd:integer"}`` (GS1's
    Example-TransactionEvents-2020_07_03y.jsonld). Read alike, except that an object gives its ``@id`` and
    one without an ``@id`` defines no prefix."""
    if not isinstance(context, list):
        return  # as the reference: only a list of contexts names prefixes
    for entry in context:
        if isinstance(entry, str):
            json_to_py._namespaces[entry] = "{" + entry + "}"
        elif isinstance(entry, dict):
            for key, value in entry.items():
                iri = value.get("@id") if isinstance(value, dict) else value
                if isinstance(iri, str):
                    json_to_py._namespaces[key] = "{" + iri + "}"


json_to_py._collect_namespaces_from_jsonld_context = _collect_namespaces


def event_hash(event: dict[str, Any], context: Any) -> str:
    """The CBV 2.0 event hash id of one event, given the ``@context`` of the document it came in."""
    event = copy.deepcopy(event)
    for transaction in event.get("bizTransactionList") or ():
        if isinstance(transaction, dict) and "type" not in transaction:
            transaction["type"] = UNTYPED  # see UNTYPED
    document = {
        "@context": copy.deepcopy(context) if context is not None else [],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2000-01-01T00:00:00Z",
        "epcisBody": {"eventList": [event]},
    }
    with _LOCK:
        jsonld.set_document_loader(_offline_loader)
        json_to_py._namespaces.clear()
        try:
            events = json_to_py.event_list_from_epcis_document_json(document)
            hashes = _hashes(events)
        except jsonld.JsonLdError as exc:
            first = str(exc).splitlines()[0].strip("(',)")
            raise HashError(
                f"the CBV 2.0 event hash cannot be computed from this document's @context ({first}); "
                "give the event an eventID"
            ) from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise HashError(f"cannot compute the CBV 2.0 event hash ({exc}); give the event an eventID") from None
    if len(hashes) != 1:
        raise HashError("cannot compute the CBV 2.0 event hash of this event; give the event an eventID")
    return hashes[0]


UNTYPED = "urn:x-traceability:untyped-business-transaction"
"""Stands in for the type a business transaction may leave out, while the reference implementation reads it.

The reference reads every ``bizTransaction`` as a type and a value, and fails on one without a type (GS1's
own Example-TransactionEvents-2020_07_03y, in JSON and in XML, has such). CBV 2.0 leaves an absent
attribute out of the pre-hash string: the event is read with this type in its place, and then its
``type=`` segment is taken out of the pre-hash string before hashing, so the hash is that of the event as it
came, and the same from JSON and from XML."""
_UNTYPED_SEGMENT = f"type={UNTYPED}"


def _hashes(events: Any) -> list[str]:
    """The events' hash ids from the reference's reading of them, without the :data:`UNTYPED` stand-ins."""
    prehashes = [p.replace(_UNTYPED_SEGMENT, "") for p in hash_generator.derive_prehashes_from_events(events)]
    return [str(h) for h in hash_generator.calculate_hashes_from_pre_hashes(prehashes)]


def xml_event_hashes(document: str) -> list[str]:
    """The CBV 2.0 event hash of every event of an XML document, in order, by the reference's XML reading."""
    document = _typed_transactions(document)
    with _LOCK:
        try:
            events = xml_to_py.event_list_from_epcis_document_str(document)
            hashes = _hashes(events)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise HashError(f"cannot compute the CBV 2.0 event hash ({exc}); give the events an eventID") from None
    if len(hashes) != len(events[2]):
        raise HashError("cannot compute the CBV 2.0 event hash of every event of this document; give them an eventID")
    return hashes


def _typed_transactions(document: str) -> str:
    """The document with :data:`UNTYPED` as the type of each business transaction that has none."""
    if "bizTransaction" not in document:
        return document
    root = etree.fromstring(document.encode(), parser=_PARSER)
    untyped = [
        e
        for e in root.iter()
        if isinstance(e.tag, str) and etree.QName(e).localname == "bizTransaction" and e.get("type") is None
    ]
    if not untyped:
        return document
    for element in untyped:
        element.set("type", UNTYPED)
    return str(etree.tostring(root, encoding="unicode"))
