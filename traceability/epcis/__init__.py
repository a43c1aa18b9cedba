"""GS1 EPCIS 2.0: reading, checking and writing EPCIS documents. Pure: no I/O.

::

    document     JSON / JSON-LD documents: strict parsing, GS1's JSON schema, each event's exact text
    xml          EPCIS 2.0 and 1.2 XML documents: GS1's XSDs, mapped to the JSON form
    events       one event's facets: type, times, what (EPCs and classes), where, why, error declaration
    identifiers  EPC URNs and GS1 Digital Link URIs in both directions; identifier keys; GLNs
    hashing      the CBV 2.0 event hash (``ni:///sha-256;…?ver=CBV2.0``), GS1's reference implementation
    query        SimpleEventQuery parameters
    export       the ledger's own events as EPCIS 2.0 JSON-LD; document wrappers

GS1's files (schema, context, XSDs) are in ``gs1/`` with GS1's notice (``gs1/NOTICE.md``).
"""
