"""The ledger's own events in EPCIS 2.0 JSON-LD, and the documents that carry events.

A native event (recorded through ``/api/v1``) is written as an EPCIS event of its type:

* ``eventID`` ``urn:uuid:{event id}``; ``eventTime`` in UTC with the event's own ``eventTimeZoneOffset``;
  ``recordTime`` when the ledger recorded it;
* the batch as a class: ``quantityList: [{"epcClass": "{public URL}/t/{trace code}", "quantity", "uom"}]``
  (the URL every QR code holds);
* where: ``readPoint`` and ``bizLocation`` are the node, as an SGLN URN when the node has a GLN, else
  ``{public URL}/n/{node code}``;
* why: ``bizStep`` and ``disposition`` (CBV 2.0 bare words), certificates as ``certificationInfo``,
  trade documents as ``bizTransactionList``, source and destination nodes as ``sourceList`` /
  ``destinationList`` (the destination only in the full view);
* everything else the ledger keeps, in the ``trace:`` namespace (``{public URL}/epcis/ns#``): the trace
  code, node, operator, documents, category key data, and (full view) commercial details.

Events captured through EPCIS are returned as they came (:mod:`traceability.services.epcis_query`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson

from traceability.domain.fields import utc_ms
from traceability.epcis.document import CONTEXT_URL, Number

TRADE_DOCUMENTS = {
    "trade_voucher": "inv",
    "sale_voucher": "inv",
    "invoice": "inv",
    "purchase_order": "po",
    "despatch_advice": "desadv",
}
DEFAULT_ACTION = {"commissioning": "ADD", "destroying": "DELETE", "decommissioning": "DELETE"}


def namespace(public_url: str) -> str:
    return f"{public_url}/epcis/ns#"


def context(public_url: str, extra: list[Any] | None = None) -> list[Any]:
    """The ``@context`` of our documents: GS1's, ``trace:`` and any prefixes captured events brought."""
    return [CONTEXT_URL, {"trace": namespace(public_url)}, *(extra or [])]


def batch_uri(public_url: str, trace_code: str) -> str:
    return f"{public_url}/t/{trace_code}"


def node_uri(public_url: str, code: str, gln_uri: str | None) -> str:
    return gln_uri or f"{public_url}/n/{quote(code, safe='')}"


def package_uri(public_url: str, code: str) -> str:
    return f"{public_url}/p/{quote(code, safe='')}"


def _number(text: str) -> Number:
    return Number(text)


def native_event(
    content: dict[str, Any],
    *,
    event_id: str,
    trace_code: str,
    recorded_at: datetime,
    public_url: str,
    node: str,
    nodes: dict[str, str],
    full: bool,
) -> dict[str, Any]:
    """One native event as EPCIS 2.0 (``content`` already has the private fields merged in when ``full``).

    ``node`` is the recording node's URI; ``nodes`` maps other node codes to theirs.
    """
    kind = content.get("type") or "ObjectEvent"
    step = content.get("bizStep")
    out: dict[str, Any] = {
        "type": kind,
        "eventID": f"urn:uuid:{event_id}",
        "eventTime": content["eventTime"],
        "eventTimeZoneOffset": content.get("eventTimeZoneOffset") or "+00:00",
        "recordTime": utc_ms(recorded_at),
    }
    if kind != "TransformationEvent":  # the one event type without an action
        out["action"] = content.get("action") or DEFAULT_ACTION.get(step or "", "OBSERVE")
    quantity = content.get("quantity")
    element: dict[str, Any] = {"epcClass": batch_uri(public_url, trace_code)}
    if isinstance(quantity, dict) and "value" in quantity:
        element["quantity"] = _number(str(quantity["value"]))
        if quantity.get("uom"):
            element["uom"] = quantity["uom"]
    if kind == "AggregationEvent" and "parentID" in content:
        out["parentID"] = package_uri(public_url, content["parentID"])
        out["childEPCs"] = [package_uri(public_url, c) for c in content.get("childEPCs", ())]
    elif kind == "TransformationEvent":
        # A native transformation is a record on each input (naming the outputs) and on each output
        # (naming the inputs); either way the EPCIS event lists both sides.
        others = [_element(public_url, o) for o in content.get("outputs") or content.get("inputs") or []]
        mine, theirs = ("inputQuantityList", "outputQuantityList")
        if "inputs" in content:
            mine, theirs = theirs, mine
        out[mine] = [element]
        if others:
            out[theirs] = others
        if content.get("transformationID"):
            out["transformationID"] = f"urn:uuid:{content['transformationID']}"
    else:
        out["quantityList"] = [element]
    if step:
        out["bizStep"] = step
    if content.get("disposition"):
        out["disposition"] = content["disposition"]
    out["readPoint"] = {"id": node}
    out["bizLocation"] = {"id": node}
    documents = content.get("documents") or []
    trade = [
        {"type": TRADE_DOCUMENTS[d["type"]], "bizTransaction": _document_uri(public_url, d)}
        for d in documents
        if d.get("type") in TRADE_DOCUMENTS
    ]
    if trade or kind == "TransactionEvent":
        # A TransactionEvent names at least one business transaction; without a trade document, the record itself.
        out["bizTransactionList"] = trade or [{"bizTransaction": f"{public_url}/api/v1/events/{event_id}"}]
    certificates = [_document_uri(public_url, d) for d in documents if d.get("type") not in TRADE_DOCUMENTS]
    if certificates:
        out["certificationInfo"] = certificates if len(certificates) > 1 else certificates[0]
    for key, target in (("source", "sourceList"), ("destination", "destinationList")):
        party = content.get(key)
        if not isinstance(party, dict) or (key == "destination" and not full):
            continue
        code = party.get("node")
        if isinstance(code, str):
            out[target] = [{"type": "location", key: nodes.get(code) or node_uri(public_url, code, None)}]
    declaration = content.get("errorDeclaration")
    if isinstance(declaration, dict):
        decl: dict[str, Any] = {"declarationTime": declaration.get("declarationTime") or content["eventTime"]}
        if declaration.get("reason"):
            decl["reason"] = declaration["reason"]
        if declaration.get("correctiveEventIDs"):
            decl["correctiveEventIDs"] = [f"urn:uuid:{c}" for c in declaration["correctiveEventIDs"]]
        if declaration.get("declaredEventID"):
            decl["trace:declaredEventID"] = f"urn:uuid:{declaration['declaredEventID']}"
        out["errorDeclaration"] = decl
    out["trace:traceCode"] = trace_code
    out["trace:node"] = content.get("node")
    for key in (
        "operator",
        "documents",
        "attributes",
        "batch",
        "recall",
        "hold",
        "inputs",
        "outputs",
        "production",
        "insist",
    ):
        if content.get(key):
            out[f"trace:{key}"] = content[key]
    if full:
        for key in ("commercial", "destination"):
            if content.get(key):
                out[f"trace:{key}"] = content[key]
    return out


def _element(public_url: str, item: dict[str, Any]) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": batch_uri(public_url, str(item.get("traceCode")))}
    quantity = item.get("quantity")
    if isinstance(quantity, dict) and "value" in quantity:
        element["quantity"] = _number(str(quantity["value"]))
        if quantity.get("uom"):
            element["uom"] = quantity["uom"]
    return element


def _document_uri(public_url: str, doc: dict[str, Any]) -> str:
    kind, number = quote(str(doc.get("type", "other")), safe=""), quote(str(doc.get("number")), safe="")
    return f"{public_url}/documents/{kind}/{number}"


def query_document(events: list[dict[str, Any]], contexts: list[Any], public_url: str, now: datetime) -> dict[str, Any]:
    """An EPCISQueryDocument with the results of a SimpleEventQuery."""
    return {
        "@context": context(public_url, contexts),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_ms(now),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}},
    }


def epcis_document(events: list[dict[str, Any]], contexts: list[Any], public_url: str, now: datetime) -> dict[str, Any]:
    """An EPCISDocument (what an export is)."""
    return {
        "@context": context(public_url, contexts),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_ms(now),
        "epcisBody": {"eventList": events},
    }


def merge_contexts(texts: list[str | None], public_url: str) -> tuple[list[Any], set[int]]:
    """The extra ``@context`` entries captured events need, and which events' contexts clash (by position).

    Prefixes from every event's document are merged into one object; an event whose prefix means
    something else than another's keeps its own ``@context`` (returned so the caller embeds it).
    """
    merged: dict[str, Any] = {"trace": namespace(public_url)}
    urls: list[str] = []
    clashing: set[int] = set()
    for i, text in enumerate(texts):
        if text is None:
            continue
        value = orjson.loads(text)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str):
                if item != CONTEXT_URL and item not in urls:
                    urls.append(item)
            elif isinstance(item, dict):
                for prefix, iri in item.items():
                    if merged.get(prefix, iri) != iri:
                        clashing.add(i)
                    else:
                        merged[prefix] = iri
    merged.pop("trace")
    return [*urls, *([merged] if merged else [])], clashing
