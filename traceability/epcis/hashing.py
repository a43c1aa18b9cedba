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
}
_contexts: dict[str, Any] = {}


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


def event_hash(event: dict[str, Any], context: Any) -> str:
    """The CBV 2.0 event hash id of one event, given the ``@context`` of the document it came in."""
    document = {
        "@context": copy.deepcopy(context) if context is not None else [],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2000-01-01T00:00:00Z",
        "epcisBody": {"eventList": [copy.deepcopy(event)]},
    }
    with _LOCK:
        jsonld.set_document_loader(_offline_loader)
        json_to_py._namespaces.clear()
        try:
            events = json_to_py.event_list_from_epcis_document_json(document)
            hashes = hash_generator.epcis_hashes_from_events(events)
        except jsonld.JsonLdError as exc:
            first = str(exc).splitlines()[0].strip("(',)")
            raise HashError(
                f"the CBV 2.0 event hash cannot be computed from this document's @context ({first}); "
                "give the event an eventID"
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HashError(f"cannot compute the CBV 2.0 event hash: {exc}") from None
    if len(hashes) != 1:
        raise HashError("cannot compute the CBV 2.0 event hash of this event")
    return str(hashes[0])


def xml_event_hashes(document: str) -> list[str]:
    """The CBV 2.0 event hash of every event of an XML document, in order, by the reference's XML reading."""
    with _LOCK:
        try:
            events = xml_to_py.event_list_from_epcis_document_str(document)
            hashes = hash_generator.epcis_hashes_from_events(events)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HashError(f"cannot compute the CBV 2.0 event hash: {exc}") from None
    if len(hashes) != len(events[2]):
        raise HashError("cannot compute the CBV 2.0 event hash of every event of this document")
    return [str(h) for h in hashes]
