"""GS1's example documents, bent: no mutant of a valid document gets a 5xx, whatever the schema makes of it.

Real documents found two crashes (an XML quantity ``xsi:nil``, a business transaction without a type); these
mutants look for the next one. Each seed is a fixed sequence of documents, so a failure is reproducible.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from lxml import etree

from tests.epcis.conftest import (
    EXAMPLES,
    MORE_EXAMPLES,
    MORE_XML_EXAMPLES,
    XML_EXAMPLES,
    Epcis,
    glns_in_xml,
    glns_named,
)

JSON_DOCS = [*EXAMPLES, *MORE_EXAMPLES]
XML_DOCS = [*XML_EXAMPLES, *MORE_XML_EXAMPLES]
ODD_TEXT = [
    "",
    " ",
    "x" * 5000,
    "0",
    "-1",
    "1e308",
    "1" * 30,
    "2026-13-45T25:61:00Z",
    "中文",
    "urn:epc:id:sgtin:0614141.107346.2017",
    "https://id.gs1.org/01/09521234543213/10/ABC",
]
ODD_JSON: list[Any] = [None, 0, -1, 1e308, 10**30, True, [], {}, "\u0000", *ODD_TEXT]
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
PER_SEED = 20


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from _places(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*path, i)
            yield from _places(inner, (*path, i))


def bent_json(doc: Any, rng: random.Random) -> bytes:
    """One to three of: a member taken out, a list item doubled, a value replaced by an odd one."""
    doc = copy.deepcopy(doc)
    events = doc["epcisBody"].get("eventList") or doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    places = list(_places(events))
    for _ in range(rng.randint(1, 3)):
        path, roll = rng.choice(places), rng.random()
        try:
            parent = events
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            if roll < 0.3 and isinstance(parent, dict):
                del parent[key]
            elif roll < 0.5 and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
            else:
                parent[key] = rng.choice(ODD_JSON)
        except (KeyError, IndexError, TypeError):  # an earlier change took this place away
            continue
    return json.dumps(doc, ensure_ascii=False).encode()  # json, not orjson: it writes integers past 64 bits


def bent_xml(raw: bytes, rng: random.Random) -> bytes:
    """One to three of: an element taken out, doubled, made nil, or given an odd text or attribute."""
    root = etree.fromstring(raw)
    elements = [e for e in root.iter() if isinstance(e.tag, str)][1:]
    for _ in range(rng.randint(1, 3)):
        element, roll = rng.choice(elements), rng.random()
        parent = element.getparent()
        if parent is None:  # taken out with its parent
            continue
        if roll < 0.25:
            parent.remove(element)
        elif roll < 0.45:
            parent.append(copy.deepcopy(element))
        elif roll < 0.6:
            element.set(XSI_NIL, "true")
            element.text = None
            for child in list(element):
                element.remove(child)
        elif roll < 0.7 and element.attrib:
            element.set(rng.choice(list(element.attrib)), rng.choice(ODD_TEXT))
        else:
            element.text = rng.choice(ODD_TEXT)
    return bytes(etree.tostring(root))


@pytest.mark.parametrize("seed", range(6))
async def test_no_bent_json_document_gets_a_server_error(epcis: Epcis, seed: int) -> None:
    rng = random.Random(seed)
    docs = [orjson.loads(p.read_bytes()) for p in JSON_DOCS]
    await epcis.register_glns(sorted({g for d in docs for g in glns_named(d)}))
    for _ in range(PER_SEED):
        body = bent_json(rng.choice(docs), rng)
        for behaviour in ("rollback", "proceed"):
            status, answer = await epcis.capture(body, headers={"GS1-Capture-Error-Behaviour": behaviour})
            assert status < 500, (answer, body[:2000])


@pytest.mark.parametrize("seed", range(6))
async def test_no_bent_xml_document_gets_a_server_error(epcis: Epcis, seed: int) -> None:
    rng = random.Random(seed)
    raws = [p.read_bytes() for p in XML_DOCS]
    await epcis.register_glns(sorted({g for raw in raws for g in glns_in_xml(raw)}))
    for _ in range(PER_SEED):
        body = bent_xml(rng.choice(raws), rng)
        for behaviour in ("rollback", "proceed"):
            status, answer = await epcis.capture(
                body, content_type="application/xml", headers={"GS1-Capture-Error-Behaviour": behaviour}
            )
            assert status < 500, (answer, body[:2000])
