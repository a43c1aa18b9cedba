"""GS1's EPCIS 2.0 REST binding (openapi.yaml): its headers and its error shape.

Errors are RFC 7807 problems whose ``type`` is one of GS1's exception names. The ledger's invalid-field
errors (422 on the native API) are the binding's 400 ``ValidationException``; the ledger's ``code``,
``field`` and request id travel as extension members.
"""

from __future__ import annotations

from typing import Any

EXCEPTIONS = {
    400: "epcisException:ValidationException",
    401: "epcisException:SecurityException",
    403: "epcisException:SecurityException",
    404: "epcisException:NoSuchResourceException",
    405: "epcisException:ValidationException",
    406: "epcisException:NotAcceptableException",
    409: "epcisException:ResourceAlreadyExistsException",
    413: "epcisException:CaptureLimitExceededException",
    414: "epcisException:URITooLongException",
    415: "epcisException:UnsupportedMediaTypeException",
    422: "epcisException:ValidationException",
}
IMPLEMENTATION = "epcisException:ImplementationException"
QUERY_PARAMETER = "epcisException:QueryParameterException"

HEADERS = {
    "GS1-EPCIS-Version": "2.0.0",
    "GS1-EPCIS-Min": "1.2.0",
    "GS1-EPCIS-Max": "2.0.0",
    "GS1-CBV-Version": "2.0.0",
    "GS1-CBV-Min": "1.2.0",
    "GS1-CBV-Max": "2.0.0",
    "GS1-EPC-Format": "No_Preference",
    "GS1-Vendor-Version": "traceability",
}
CAPTURE_BEHAVIOURS = ("rollback", "proceed")


def problem(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    index: int | None = None,
    event_id: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One error as an RFC 7807 problem in GS1's vocabulary."""
    out: dict[str, Any] = {
        "type": QUERY_PARAMETER if code == "query_parameter" else EXCEPTIONS.get(status, IMPLEMENTATION),
        "title": message,
        "status": 400 if status == 422 else status,
        "code": code,
    }
    if field:
        out["field"] = field
    if index is not None:
        out["eventIndex"] = index
    if event_id is not None:
        out["eventID"] = event_id
    if request_id is not None:
        out["request_id"] = request_id
    return out
