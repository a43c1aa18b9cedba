"""EPCIS 2.0 and 1.2 XML documents: GS1's XSDs, then the same JSON form a JSON-LD document has.

Drug serialisation systems still send EPCIS 1.2 XML (``urn:epcglobal:epcis:xsd:1``); newer systems
send 2.0 XML (``urn:epcglobal:epcis:xsd:2``). A document is parsed without DTDs, entities or network
access, validated against the XSD of its version, and each event mapped to EPCIS 2.0 JSON-LD as GS1's
mapping does: 1.2's ``extension``/``baseExtension`` wrappers flattened, lists of ``epc`` elements as
arrays, ``type`` attributes as members, CBV URNs (``urn:epcglobal:cbv:bizstep:receiving``) as their
bare JSON values, sensor attributes as typed members, and every element from another namespace kept
as ``prefix:name`` with the prefix added to ``@context``. Numbers keep their text. The JSON form is
then checked against the JSON schema too, and captured like any JSON document.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from lxml import etree

from traceability.epcis.document import (
    CONTEXT_URL,
    EVENT_TYPES,
    GS1_DIR,
    DocumentError,
    Number,
    Problem,
    Received,
    dumps_exact,
    event_path,
    said,
    validate,
)
from traceability.epcis.events import bare

NS2 = "urn:epcglobal:epcis:xsd:2"
NS1 = "urn:epcglobal:epcis:xsd:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
GS1_VOC = "https://gs1.org/voc/"
_LIST_ITEMS = {
    "epcList": "epc",
    "childEPCs": "epc",
    "inputEPCList": "epc",
    "outputEPCList": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
    "sensorElementList": "sensorElement",
    "correctiveEventIDs": "correctiveEventID",
}
_TYPED_ITEMS = {"bizTransaction": "bizTransaction", "source": "source", "destination": "destination"}
_VOCAB_KIND = {"bizStep": "bizStep", "disposition": "disposition", "reason": "reason"}
_NUMBERS = {"quantity", "value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
_SENSOR_URIS = {"type", "exception", "component"}
# Namespaces GS1's JSON-LD context already names (its terms are protected: they are used, never redefined).
_CONTEXT_PREFIXES = {
    "urn:epcglobal:cbv:mda": "cbvmda",
    "urn:epcglobal:cbv:mda:": "cbvmda",
    "https://gs1.org/voc/": "gs1",
    "https://ref.gs1.org/cbv/": "cbv",
    "https://ref.gs1.org/epcis/": "epcis",
}
_BTT = ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-", "https://gs1.org/voc/BTT-")
_SDT = ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-", "https://gs1.org/voc/SDT-")


@functools.cache
def _schema(version: str) -> etree.XMLSchema:
    path = GS1_DIR / ("xsd/EPCglobal-epcis-2_0.xsd" if version == "2" else "xsd-1.2/EPCglobal-epcis-1_2.xsd")
    return etree.XMLSchema(etree.parse(str(path), _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
    )


def _strip(prefixes: tuple[str, ...], value: str) -> str:
    for prefix in prefixes:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _number(text: str) -> int | Number:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        float(text)  # raises for what is not a number
        return Number(text)


class _Converter:
    """Maps one document's events to JSON, collecting the extension prefixes they use."""

    def __init__(self, root: etree._Element) -> None:
        self.prefixes: dict[str, str] = {}
        self.nsmap = {k: v for k, v in root.nsmap.items() if k}

    def prefix(self, namespace: str, preferred: str | None) -> str:
        """The JSON-LD prefix for an XML namespace: GS1's own where its context has one, else the document's."""
        if namespace in _CONTEXT_PREFIXES:
            return _CONTEXT_PREFIXES[namespace]
        prefix = preferred or next((p for p, u in self.nsmap.items() if u == namespace), None) or "ext"
        if prefix in _CONTEXT_PREFIXES.values() or self.prefixes.get(prefix, namespace) != namespace:
            n = 1
            while f"ns{n}" in self.prefixes and self.prefixes[f"ns{n}"] != namespace:
                n += 1
            prefix = f"ns{n}"
        self.prefixes.setdefault(prefix, namespace)
        return prefix

    def name(self, element: etree._Element) -> str:
        qname = etree.QName(element)
        if qname.namespace is None:
            return str(qname.localname)
        return f"{self.prefix(qname.namespace, element.prefix)}:{qname.localname}"

    def extension_value(self, element: etree._Element) -> Any:
        """An element from another namespace: its text, or an object of its attributes and children.

        ``xsi:type`` becomes a JSON-LD typed value (``{"@type": "xsd:integer", "@value": "10"}``); other
        attributes are members, text beside them is ``#text``. Nothing of the element is left out.
        """
        children = [c for c in element if isinstance(c.tag, str)]
        text = (element.text or "").strip()
        attributes = dict(element.attrib)
        xsi_type = attributes.pop(f"{{{XSI}}}type", None)
        if not children and not attributes:
            return {"@type": xsi_type, "@value": text} if xsi_type else text
        out: dict[str, Any] = {}
        if xsi_type:
            out["@type"] = xsi_type
        for key, value in attributes.items():
            qname = etree.QName(key)
            name = (
                qname.localname
                if qname.namespace is None
                else f"{self.prefix(qname.namespace, None)}:{qname.localname}"
            )
            out[name] = value
        if text:
            out["#text"] = text
        for child in children:
            key = self.name(child)
            value = self.extension_value(child)
            if key in out:
                out[key] = out[key] if isinstance(out[key], list) else [out[key]]
                out[key].append(value)
            else:
                out[key] = value
        return out

    def flattened(self, element: etree._Element) -> list[etree._Element]:
        """Children, with 1.2's ``extension`` and ``baseExtension`` wrappers opened."""
        out = []
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if etree.QName(child).namespace is None and etree.QName(child).localname in ("extension", "baseExtension"):
                out.extend(self.flattened(child))
            else:
                out.append(child)
        return out

    def sensor_part(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in element.attrib.items():
            qname = etree.QName(key)
            if qname.namespace is not None:
                out[f"{self.prefix(qname.namespace, None)}:{qname.localname}"] = value
            elif qname.localname in _NUMBERS:
                out[qname.localname] = _number(value)
            elif qname.localname == "booleanValue":
                out[qname.localname] = value.strip() in ("true", "1")
            elif qname.localname in _SENSOR_URIS and value.startswith("gs1:"):
                out[qname.localname] = value[4:]
            elif qname.localname in _SENSOR_URIS and value.startswith(GS1_VOC):
                out[qname.localname] = value[len(GS1_VOC) :]
            else:
                out[qname.localname] = value
        return out

    def sensor_element(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in self.flattened(element):
            local = etree.QName(child).localname
            if etree.QName(child).namespace is None and local == "sensorMetadata":
                out["sensorMetadata"] = self.sensor_part(child)
            elif etree.QName(child).namespace is None and local == "sensorReport":
                out.setdefault("sensorReport", []).append(self.sensor_part(child))
            else:
                out[self.name(child)] = self.extension_value(child)
        return out

    def item(self, list_name: str, element: etree._Element) -> Any:
        local = etree.QName(element).localname
        if local == "quantityElement":
            q: dict[str, Any] = {}
            for child in self.flattened(element):
                if child.get(f"{{{XSI}}}nil") in ("true", "1"):
                    continue  # <quantity xsi:nil="true"/>: a class named without a quantity, as JSON leaves it out
                key = etree.QName(child).localname
                text = (child.text or "").strip()
                q[key] = _number(text) if key == "quantity" else text
            return q
        if local in _TYPED_ITEMS:
            out: dict[str, Any] = {}
            if "type" in element.attrib:
                kind = element.attrib["type"]
                out["type"] = _strip(_BTT if local == "bizTransaction" else _SDT, kind)
            out[_TYPED_ITEMS[local]] = (element.text or "").strip()
            return out
        if local == "sensorElement":
            return self.sensor_element(element)
        return (element.text or "").strip()

    def event(self, element: etree._Element, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": kind}
        for child in self.flattened(element):
            qname = etree.QName(child)
            if qname.namespace is not None:
                out[self.name(child)] = self.extension_value(child)
                continue
            local = qname.localname
            if local in _LIST_ITEMS:
                out[local] = [self.item(local, c) for c in self.flattened(child)]
            elif local in ("readPoint", "bizLocation"):
                ids = [c for c in self.flattened(child) if etree.QName(c).localname == "id"]
                place: dict[str, Any] = {"id": (ids[0].text or "").strip()} if ids else {}
                for c in self.flattened(child):
                    if etree.QName(c).namespace is not None:
                        place[self.name(c)] = self.extension_value(c)
                out[local] = place
            elif local == "persistentDisposition":
                pd: dict[str, list[str]] = {}
                for c in self.flattened(child):
                    pd.setdefault(etree.QName(c).localname, []).append(bare("disposition", (c.text or "").strip()))
                out[local] = pd
            elif local == "errorDeclaration":
                out[local] = self.declaration(child)
            elif local == "ilmd":
                out[local] = {self.name(c): self.extension_value(c) for c in self.flattened(child)}
            elif local in _VOCAB_KIND:
                out[local] = bare(_VOCAB_KIND[local], (child.text or "").strip())
            else:
                out[local] = (child.text or "").strip()
        return out

    def declaration(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in self.flattened(element):
            qname = etree.QName(child)
            if qname.namespace is not None:
                out[self.name(child)] = self.extension_value(child)
            elif qname.localname == "correctiveEventIDs":
                out["correctiveEventIDs"] = [(c.text or "").strip() for c in self.flattened(child)]
            elif qname.localname == "reason":
                out["reason"] = bare("reason", (child.text or "").strip())
            else:
                out[qname.localname] = (child.text or "").strip()
        return out


def read(body: bytes, *, single_event: bool = False, max_events: int = 1000, lenient: bool = False) -> Received:
    """Parse, validate (XSD) and map an EPCIS XML document; raise :class:`DocumentError` naming the problem."""
    if single_event:
        raise DocumentError(
            [Problem("", "POST /epcis/events takes one event in JSON; send XML documents to /epcis/capture")]
        )
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise DocumentError([Problem("", f"the body is not well-formed XML: {exc}")]) from None
    qname = etree.QName(root)
    if qname.localname == "EPCISMasterDataDocument":
        raise DocumentError(
            [Problem("", "an EPCISMasterDataDocument: the ledger keeps events, not master data; send an EPCISDocument")]
        )
    if qname.localname != "EPCISDocument" or qname.namespace not in (NS1, NS2):
        raise DocumentError([Problem("", "the root element must be an EPCIS 2.0 or 1.2 epcis:EPCISDocument")])
    schema = _schema("2" if qname.namespace == NS2 else "1")
    if not schema.validate(etree.ElementTree(root)):
        problems = [Problem(f"line {e.line}", said(e.message)) for e in list(schema.error_log)[:20]]
        raise DocumentError(problems)
    converter = _Converter(root)
    body_el = next((c for c in root if etree.QName(c).localname == "EPCISBody"), None)
    event_list = (
        next((c for c in body_el if etree.QName(c).localname == "EventList"), None) if body_el is not None else None
    )
    elements = []
    for child in converter.flattened(event_list) if event_list is not None else []:
        kind = etree.QName(child).localname
        if kind in EVENT_TYPES:
            elements.append((kind, child))
        elif kind == "extension":
            elements.extend((etree.QName(c).localname, c) for c in child if isinstance(c.tag, str))
    if len(elements) > max_events:
        raise DocumentError([Problem("epcisBody.eventList", f"holds {len(elements)} events; at most {max_events}")])
    exact_events = [converter.event(element, kind) for kind, element in elements]
    context: list[Any] = [CONTEXT_URL]
    if converter.prefixes:
        context.append(dict(converter.prefixes))
    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": root.get("creationDate"),
        "epcisBody": {"eventList": exact_events},
    }
    plain = orjson.loads(dumps_exact(document))
    problems = validate(plain)
    refused: dict[int, list[Problem]] = {}
    for problem in problems:
        index = _index(problem.path)
        if index is None or not lenient:
            raise DocumentError([Problem(p.path, f"{p.message} (in the JSON form of this XML)") for p in problems])
        refused.setdefault(index, []).append(problem)
    if not exact_events:
        raise DocumentError([Problem("epcisBody.eventList", "holds no event")])
    received = Received("EPCISDocument", orjson.dumps(context).decode(), [], refused, len(exact_events))
    received.originals.update({i: _canonical_xml(element) for i, (_, element) in enumerate(elements)})
    if any("eventID" not in e for e in exact_events):
        from traceability.epcis import hashing

        try:
            hashes = hashing.xml_event_hashes(body.decode("utf-8"))
        except (hashing.HashError, UnicodeDecodeError) as exc:
            raise DocumentError([Problem("eventID", f"{exc}; give each event an eventID")]) from None
        if len(hashes) == len(exact_events):
            received.computed_ids.update({i: h for i, h in enumerate(hashes) if "eventID" not in exact_events[i]})
    for i, (event, exact) in enumerate(zip(plain["epcisBody"]["eventList"], exact_events, strict=True)):
        if i not in refused:
            received.events.append((i, event, exact))
    return received


def _index(path: str) -> int | None:
    prefix = event_path("EPCISDocument", 0)[: -len("[0]")] + "["
    if path.startswith(prefix):
        return int(path[len(prefix) : path.index("]", len(prefix))])
    return None


def _canonical_xml(element: etree._Element) -> str:
    """An event element on its own, as Canonical XML 1.0 (with the namespaces in scope it uses)."""
    copy = etree.fromstring(etree.tostring(element), _parser())
    return str(etree.tostring(copy, method="c14n").decode())
