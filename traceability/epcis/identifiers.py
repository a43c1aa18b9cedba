"""EPC URNs and GS1 Digital Link URIs: what an identifier names, in both spellings.

An EPCIS event names things (``epcList``, ``quantityList``, ``parentID``, …) and places
(``readPoint``, ``bizLocation``, sources and destinations) by URI. The same trade item can be written
``urn:epc:id:sgtin:0614141.107346.2017`` or ``https://id.gs1.org/01/10614141073464/21/2017``; both
reduce to the same GS1 element strings, ``(01)10614141073464(21)2017``, and so to the same
:class:`Identifier` key. EPC URNs are read by epcpy, Digital Link URIs and element strings by biip
(which also knows the GS1 Company Prefix lengths that turning a key back into a URN needs).

Keys (``scheme``, ``value``) are what the ledger's identifier table stores:

=========  ================================  =========================================================
scheme     value                             written as
=========  ================================  =========================================================
``gs1``    ``{gtin14}/{lot}``                LGTIN ``urn:epc:class:lgtin:…``, ``/01/{gtin}/10/{lot}``
``sgtin``  ``{gtin14}/{serial}``             SGTIN ``urn:epc:id:sgtin:…``, ``/01/{gtin}/21/{serial}``
``gtin``   ``{gtin14}``                      ``urn:epc:idpat:sgtin:CP.IR.*``, ``/01/{gtin}``
``sscc``   18 digits                         ``urn:epc:id:sscc:…``, ``/00/{sscc}``
``ai…``    the key's element string values   other GS1 keys: ``ai8003`` (GRAI), ``ai8004`` (GIAI), …
``uri``    the URI as written                any other URI
=========  ================================  =========================================================

(``gs1`` is the scheme batches opened through the native API use for GTIN + lot, so an EPCIS event
about a lot finds the batch a scanner opened for it.) A trace code is named by the URL of its consumer
page, ``{public URL}/t/{code}``, or by a label's Digital Link whose lot is the trace code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from biip import ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from epcpy.epc_schemes.cpi import CPI
from epcpy.epc_schemes.gdti import GDTI
from epcpy.epc_schemes.giai import GIAI
from epcpy.epc_schemes.ginc import GINC
from epcpy.epc_schemes.grai import GRAI
from epcpy.epc_schemes.gsin import GSIN
from epcpy.epc_schemes.gsrn import GSRN
from epcpy.epc_schemes.gsrnp import GSRNP
from epcpy.epc_schemes.lgtin import LGTIN
from epcpy.epc_schemes.pgln import PGLN
from epcpy.epc_schemes.sgcn import SGCN
from epcpy.epc_schemes.sgln import SGLN
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import epc_pure_identity_to_gs1_element_string
from stdnum import ean

from traceability.domain import tracecode

GS1_RESOLVER = "https://id.gs1.org"
_IDPAT_SGTIN = re.compile(r"urn:epc:idpat:sgtin:(\d{6,12})\.(\d{1,7})\.\*")
_TRACE_PATH = re.compile(r"/t/(?P<code>[0-9 \-]{20,40})/?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
# Primary GS1 keys and the qualifiers that belong to an identity (GS1 Digital Link 1.2, section 4).
_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "01": ("22", "10", "21"),
    "8006": ("22", "10", "21"),
    "414": ("254", "7040"),
    "8010": ("8011",),
    "00": (),
    "253": (),
    "255": (),
    "401": (),
    "402": (),
    "417": (),
    "8003": (),
    "8004": (),
    "8017": ("8019",),
    "8018": ("8019",),
}
# Which epcpy scheme writes a key back as a URN, by primary AI and whether a lot or serial qualifies it.
_URN_SCHEMES: dict[tuple[str, str], Any] = {
    ("01", "21"): SGTIN,
    ("01", "10"): LGTIN,
    ("00", ""): SSCC,
    ("414", ""): SGLN,
    ("414", "254"): SGLN,
    ("417", ""): PGLN,
    ("8003", ""): GRAI,
    ("8004", ""): GIAI,
    ("253", ""): GDTI,
    ("8018", ""): GSRN,
    ("8017", ""): GSRNP,
    ("401", ""): GINC,
    ("402", ""): GSIN,
    ("255", ""): SGCN,
    ("8010", "8011"): CPI,
}


class IdentifierError(ValueError):
    """A URI that claims to be a GS1 identifier (an EPC URN or a Digital Link) but is not a valid one."""


@dataclass(frozen=True, slots=True)
class Identifier:
    """What one URI names."""

    uri: str
    scheme: str
    value: str
    elements: tuple[tuple[str, str], ...] = ()
    """The GS1 element strings (AI, value) of a GS1 identifier; empty for other URIs."""
    trace_code: str | None = None
    """Set when the URI names one of our trace codes (its consumer page, or a label's Digital Link)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.scheme, self.value)

    @property
    def gtin(self) -> str | None:
        return dict(self.elements).get("01")

    @property
    def is_instance(self) -> bool:
        """Whether it names one object (SGTIN, SSCC, …) rather than a class (a lot, a GTIN), a place or a party
        (a GLN, AI 414 or 417: what the readings were taken at, or who acted, never a thing counted)."""
        return self.scheme not in ("gs1", "gtin", "uri", "ai414", "ai417")


def _element_string(elements: Sequence[tuple[str, str]]) -> str:
    return "".join(f"({ai}){value}" for ai, value in elements)


def _identity(elements: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The primary key and its qualifiers, in Digital Link order; data attributes (17, 3103, …) dropped."""
    found = dict(elements)
    if found.get("254") == "0":  # an SGLN's extension 0 means no extension
        del found["254"]
    for primary, qualifiers in _QUALIFIERS.items():
        if primary in found:
            return ((primary, found[primary]), *((q, found[q]) for q in qualifiers if q in found))
    raise IdentifierError("names no GS1 key (GTIN, SSCC, GLN, GRAI, GIAI, …)")


def _keyed(uri: str, elements: tuple[tuple[str, str], ...], trace_hosts: Sequence[str]) -> Identifier:
    found = dict(elements)
    primary = elements[0][0]
    if primary == "01" and "22" not in found:
        gtin = found["01"]
        if "21" in found:
            return Identifier(uri, "sgtin", f"{gtin}/{found['21']}", elements)
        if "10" in found:
            lot = found["10"]
            code = lot if tracecode.is_valid(lot) and _host(uri) in trace_hosts else None
            return Identifier(uri, "gs1", f"{gtin}/{lot}", elements, tracecode.validate(code) if code else None)
        return Identifier(uri, "gtin", gtin, elements)
    if primary == "00":
        return Identifier(uri, "sscc", found["00"], elements)
    return Identifier(uri, f"ai{primary}", "/".join(v for _, v in elements), elements)


def _host(uri: str) -> str:
    try:
        return (urlsplit(uri).hostname or "").lower()
    except ValueError:
        return ""


def hosts(base_urls: Sequence[str]) -> tuple[str, ...]:
    """The host names of our public base URLs (where ``/t/{code}`` names one of our trace codes)."""
    return tuple(h for h in (_host(b) for b in base_urls) if h)


@functools.lru_cache(maxsize=65_536)
def _parse(uri: str, trace_hosts: tuple[str, ...]) -> Identifier:
    if not _URI.fullmatch(uri):
        raise IdentifierError(f"{uri!r} is not a URI")
    lowered = uri[:16].lower()
    if lowered.startswith(("urn:epc:id:", "urn:epc:class:")):
        try:
            text = epc_pure_identity_to_gs1_element_string(uri)
            elements = tuple((e.ai.ai, e.value) for e in GS1Message.parse_hri(text).element_strings)
        except (ConvertException, ParseError, ValueError, KeyError, AttributeError) as exc:
            # EPC schemes with no GS1 key (GID, USDoD, ADI, BIC, IMOVN) are identifiers all the same.
            if re.match(r"urn:epc:id:(gid|usdod|adi|bic|imovn|upui|pgln|itip):", uri) and "Invalid" not in str(exc):
                return Identifier(uri, "uri", uri)
            raise IdentifierError(f"{uri} is not a valid EPC URN ({exc})") from None
        return _keyed(uri, _identity(elements), trace_hosts)
    if lowered.startswith("urn:epc:idpat:"):
        match = _IDPAT_SGTIN.fullmatch(uri)
        if match is None:
            return Identifier(uri, "uri", uri)
        return _keyed(uri, (("01", _gtin_from_parts(match[1], match[2])),), trace_hosts)
    if lowered.startswith(("http://", "https://")):
        host = _host(uri)
        path = urlsplit(uri).path
        if host in trace_hosts and (m := _TRACE_PATH.fullmatch(path)):
            code = re.sub(r"[ \-]", "", unquote(m["code"]))
            if tracecode.is_valid(code):
                return Identifier(uri, "trace", tracecode.validate(code), trace_code=tracecode.validate(code))
        if re.search(r"/(01|00|414|417|8003|8004|253|255|401|402|8006|8010|8017|8018)/", path):
            try:
                link = GS1DigitalLinkURI.parse(uri)
            except ParseError as exc:
                raise IdentifierError(f"{uri} is not a valid GS1 Digital Link URI ({exc})") from None
            problems = [p for e in link.element_strings for p in (e.gtin_error, e.sscc_error, e.gln_error) if p]
            if problems:
                raise IdentifierError(f"{uri} is not a valid GS1 Digital Link URI ({problems[0]})")
            return _keyed(uri, _identity([(e.ai.ai, e.value) for e in link.element_strings]), trace_hosts)
    return Identifier(uri, "uri", uri)


def parse(uri: str, trace_hosts: Sequence[str] = ()) -> Identifier:
    """What ``uri`` names; raises :class:`IdentifierError` for a malformed EPC URN or Digital Link."""
    return _parse(uri, tuple(trace_hosts))


def _gtin_from_parts(company_prefix: str, item_reference: str) -> str:
    if len(company_prefix) + len(item_reference) != 13:
        raise IdentifierError("an SGTIN pattern's company prefix and item reference have 13 digits together")
    body = item_reference[0] + company_prefix + item_reference[1:]
    return body + ean.calc_check_digit(body)


def from_element_strings(elements: Sequence[tuple[str, str]], trace_hosts: Sequence[str] = ()) -> Identifier:
    """The identifier a scanned GS1 element string names (AIs in any order; data attributes ignored)."""
    identity = _identity(elements)
    return _keyed(to_digital_link_elements(identity), identity, tuple(trace_hosts))


def to_digital_link_elements(elements: Sequence[tuple[str, str]], base: str = GS1_RESOLVER) -> str:
    link = GS1DigitalLinkURI.from_element_strings(GS1Message.parse_hri(_element_string(elements)).element_strings)
    return link.as_uri(domain=base.rstrip("/")) if base != GS1_RESOLVER else link.as_uri()


def to_digital_link(uri: str, base: str = GS1_RESOLVER) -> str:
    """The GS1 Digital Link form of an EPC URN or Digital Link (the URI itself for other URIs)."""
    ident = parse(uri)
    if not ident.elements:
        return uri
    return to_digital_link_elements(ident.elements, base)


def _company_prefix_length(elements: Sequence[tuple[str, str]]) -> int:
    primary, value = elements[0]
    digits = value[1:] if primary in ("01", "00") else value
    try:
        cp = Gtin.parse(value).company_prefix if primary == "01" else None
        if cp is None:
            from biip.gs1_prefixes import GS1CompanyPrefix

            cp = GS1CompanyPrefix.extract(digits)
    except (ParseError, ValueError):
        cp = None
    return len(cp.value) if cp is not None else 7


def to_epc_urn(uri: str) -> str:
    """The EPC URN form of a GS1 identifier (the URI itself when it has none)."""
    ident = parse(uri)
    if not ident.elements:
        return uri
    if ident.scheme == "gtin":
        gtin = ident.elements[0][1]
        n = _company_prefix_length(ident.elements)
        return f"urn:epc:idpat:sgtin:{gtin[1 : n + 1]}.{gtin[0]}{gtin[n + 1 : 13]}.*"
    primary = ident.elements[0][0]
    qualifier = next((ai for ai, _ in ident.elements[1:] if ai in ("21", "10", "254", "8011")), "")
    scheme = _URN_SCHEMES.get((primary, qualifier))
    if scheme is None:
        return uri
    try:
        urn: str = scheme.from_gs1_element_string(
            _element_string(ident.elements), _company_prefix_length(ident.elements)
        ).epc_uri
    except (ConvertException, ValueError):
        return uri
    return urn


def location_gln(uri: str) -> str | None:
    """The GLN a location or party URI names (SGLN or PGLN, URN or Digital Link), or None."""
    try:
        ident = parse(uri)
    except IdentifierError:
        return None
    found = dict(ident.elements)
    return found.get("414") or found.get("417")


def gln_uri(gln: str) -> str:
    """A location by its GLN, as an SGLN EPC URN (no extension)."""
    n = _company_prefix_length((("414", gln),))
    return f"urn:epc:id:sgln:{gln[:n]}.{gln[n:12]}.0"


def location_key(uri: str) -> str:
    """A place as the index keeps it: ``scheme:value`` (an SGLN URN and its Digital Link give the same key)."""
    try:
        ident = parse(uri)
    except IdentifierError:
        return f"uri:{uri}"
    return f"{ident.scheme}:{ident.value}"
