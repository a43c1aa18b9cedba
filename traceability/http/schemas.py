"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the native API's bodies and answers.

Bounds come from :mod:`traceability.domain.bounds`, the values the validators enforce. Request
schemas say what the server accepts; answer schemas name the keys a client may rely on and their
types, and leave room for keys added later (``additionalProperties`` is not closed on answers).
"""

from __future__ import annotations

from typing import Any

from traceability.domain import bounds, farm
from traceability.domain.events import ACTIONS, BIZ_STEPS, DISPOSITIONS, DOCUMENT_TYPES, EVENT_TYPES, UNITS
from traceability.domain.registry import NODE_TYPES, PRODUCT_CATEGORIES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def text(max_len: int, **kw: Any) -> Schema:
    """A text field: at most ``max_len`` characters, none of them control or invisible formatting characters."""
    return {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": bounds.TEXT_PATTERN, **kw}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, closed: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})}, "required": sorted(required)}
    if closed:
        out["additionalProperties"] = False
    return out


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema, max_items: int | None = None) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if max_items is not None:
        out["maxItems"] = max_items
    return out


STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
UUID: Schema = {"type": "string", "format": "uuid", "description": "a UUID (urn:uuid: prefix allowed)"}
TIME: Schema = {
    "type": "string",
    "pattern": bounds.RFC3339_PATTERN,
    "description": f"RFC 3339 with an offset, {bounds.EARLIEST:%Y-%m-%d} or later",
}
DAY: Schema = {
    "type": "string",
    "pattern": bounds.DATE_PATTERN,
    "description": f"{bounds.FIRST_DAY}..{bounds.LAST_DAY}",
}
TRACE_CODE: Schema = {
    "type": "string",
    "pattern": r"^[1-8][0-9]{19}$",
    "description": "20 digits: area code, serial, Damm check digit",
}
TRACE_CODE_IN: Schema = {
    "type": "string",
    "maxLength": 40,
    "description": "20 digits with a valid check digit; spaces and dashes are ignored",
}
USCC: Schema = {"type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$", "description": "统一社会信用代码"}
HEX: Schema = {"type": "string", "pattern": "^[0-9a-f]*$"}
QUANTITY_IN = obj({"value": bounds.QUANTITY.schema(), "uom": {"enum": sorted(UNITS)}})
QUANTITY_OUT = obj({"value": STRING, "uom": STRING})
DOCUMENT_IN = obj(
    {"type": {"enum": sorted(DOCUMENT_TYPES)}, "number": text(bounds.DOCUMENT_NUMBER)},
    {"issuer": text(bounds.NAME)},
)
PARTY_IN = obj({}, {k: text(bounds.NAME) for k in ("enterprise", "node", "name", "operator")}) | {"minProperties": 1}
ATTRIBUTES: Schema = {
    "type": "object",
    "maxProperties": bounds.MAX_ATTRIBUTE_KEYS,
    "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_]{0,63}$"},
    "description": (
        f"category key data: text up to {bounds.ATTRIBUTE_TEXT} characters, numbers within "
        f"±{bounds.MEASURE.hi} with at most {bounds.MEASURE.places} decimal places, nested at most "
        f"{bounds.MAX_ATTRIBUTE_DEPTH} levels"
    ),
}
COMMERCIAL_IN = obj(
    {},
    {
        "unit_price": bounds.UNIT_PRICE.schema(),
        "amount": bounds.AMOUNT.schema(),
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "buyer": text(bounds.NAME),
    },
)

EVENT_IN = obj(
    {
        "eventID": UUID,
        "traceCode": TRACE_CODE_IN,
        "bizStep": {"type": "string", "maxLength": 80, "examples": sorted(BIZ_STEPS)},
        "eventTime": TIME,
    },
    {
        "type": {"enum": sorted(EVENT_TYPES)},
        "action": {"enum": sorted(ACTIONS)},
        "disposition": {"type": "string", "maxLength": 80, "examples": sorted(DISPOSITIONS)},
        "eventTimeZoneOffset": {"type": "string", "pattern": r"^[+-]\d{2}:\d{2}$"},
        "node": text(bounds.CODE),
        "operator": text(bounds.CODE),
        "quantity": QUANTITY_IN,
        "source": PARTY_IN,
        "destination": PARTY_IN,
        "documents": array(DOCUMENT_IN, bounds.MAX_DOCUMENTS),
        "commercial": COMMERCIAL_IN,
        "attributes": ATTRIBUTES,
        "errorDeclaration": obj(
            {"reason": {"type": "string", "maxLength": 80}, "declaredEventID": UUID},
            {"declarationTime": TIME, "correctiveEventIDs": array(UUID, bounds.MAX_DOCUMENTS)},
        ),
        "parentID": {"type": "string", "pattern": "^[0-9A-Za-z]{8,40}$"},
        "childEPCs": array({"type": "string", "pattern": "^[0-9A-Za-z]{8,40}$"}, 1000),
    },
)

BATCH_IN = obj(
    {"eventID": UUID, "quantity": QUANTITY_IN},
    {
        "product": text(32),
        "gtin": {"type": "string", "pattern": "^[0-9]{8,14}$"},
        "traceCode": TRACE_CODE_IN,
        "produced_on": DAY,
        "expires_on": DAY,
        "eventTime": TIME,
        "origin": obj(
            {},
            {
                "area_code": {"type": "string", "pattern": "^[1-8][0-9]{5}$"},
                "place": text(bounds.NAME),
                "unit": {"type": "string", "pattern": r"^[0-9A-Za-z\-_.]{1,40}$", "description": "plot, pen or herd"},
            },
        ),
        "insist": obj(
            {"reason": text(bounds.LONG_TEXT)},
            closed=True,
        )
        | {"description": "open inside a safety interval anyway: the reason is recorded and the batch flagged"},
        "identifiers": array(
            obj({"scheme": {"enum": ["gs1", "drug_code", "city_batch", "enterprise"]}}, {"value": text(64)}),
            bounds.MAX_DOCUMENTS,
        ),
        "documents": array(DOCUMENT_IN, bounds.MAX_DOCUMENTS),
        "attributes": ATTRIBUTES,
    },
)

RECEIPT = obj(
    {
        "eventID": STRING,
        "traceCode": TRACE_CODE,
        "seq": INT,
        "hash": HEX,
        "prevHash": HEX,
        "recordedAt": STRING,
        "replayed": BOOL,
    }
)


# An inclusion proof with the bytes it proves: alone (Proof) or many against one checkpoint (bundles).
_PROVED: dict[str, Any] = {"event_id": STRING, "event_hash": HEX, "prev_hash": HEX, "canonical": STRING}
_PROVED |= {"leaf_index": INT, "leaf_hash": HEX, "audit_path": array(HEX)}
_NOTICE = {"recall_id": INT, "trace_code": STRING, "level": STRING, "reason": STRING, "issued_at": STRING}
_NOTICE |= {"affected": INT, "acknowledged_at": nullable(STRING)}
_NOTE = {"type": "string", "description": "the C2SP signed note the proofs lead to"}
_BUNDLE = {"log_id": STRING, "tree_size": INT, "checkpoint": nullable(_NOTE), "pending": array(STRING)}
_BUNDLE["proofs"] = array(obj({**_PROVED, "seq": INT}))

COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": obj(
                {"code": STRING, "message": STRING, "request_id": STRING, "field": nullable(STRING)}, closed=True
            )
        },
        closed=True,
    ),
    "Event": EVENT_IN,
    "EventList": {
        "oneOf": [
            obj({"events": array(ref("Event"))}),
            array(ref("Event")),
        ]
    },
    "Capture": {"anyOf": [ref("Event"), ref("EventList")]},
    "BatchOpening": BATCH_IN,
    "Receipt": RECEIPT,
    "Receipts": obj({"receipts": array(ref("Receipt"))}),
    "CaptureAnswer": {"anyOf": [ref("Receipt"), ref("Receipts")]},
    "Opened": obj({"traceCode": TRACE_CODE, "url": STRING, "receipt": ref("Receipt"), "replayed": BOOL}),
    "Transformation": obj(
        {
            "eventID": UUID,
            "inputs": array(obj({"traceCode": TRACE_CODE_IN, "quantity": QUANTITY_IN}), bounds.MAX_LIST),
            "outputs": array(ref("BatchOutput"), 500),
        },
        {"bizStep": {"type": "string", "maxLength": 40}, "eventTime": TIME, "documents": array(DOCUMENT_IN, 20)},
    ),
    "BatchOutput": {**BATCH_IN, "required": ["quantity"]},
    "Transformed": obj(
        {
            "transformationID": STRING,
            "outputs": array(obj({"traceCode": TRACE_CODE, "url": STRING, "quantity": QUANTITY_OUT})),
            "inputs": array(ref("Receipt")),
            "replayed": BOOL,
        }
    ),
    "Sale": obj(
        {"eventID": UUID, "source": TRACE_CODE_IN, "quantity": QUANTITY_IN, "eventTime": TIME},
        {
            "traceCode": TRACE_CODE_IN,
            "eventTimeZoneOffset": {"type": "string", "pattern": r"^[+-]\d{2}:\d{2}$"},
            "operator": text(bounds.CODE),
            "commercial": COMMERCIAL_IN,
            "documents": array(DOCUMENT_IN, bounds.MAX_DOCUMENTS),
            "attributes": ATTRIBUTES,
        },
    ),
    "Sold": obj(
        {
            "traceCode": TRACE_CODE,
            "source": TRACE_CODE,
            "url": STRING,
            "receipt": ref("Receipt"),
            "sale": ref("Receipt"),
            "replayed": BOOL,
        }
    ),
    "RecallRequest": obj(
        {"traceCode": TRACE_CODE_IN, "level": {"enum": ["I", "II", "III"]}, "reason": text(bounds.LONG_TEXT)},
        {"scope": text(bounds.LONG_TEXT)},
    ),
    "Recall": obj(
        {
            "recall_id": INT,
            "trace_code": TRACE_CODE,
            "level": STRING,
            "reason": STRING,
            "issued_at": STRING,
            "replayed": BOOL,
            "batches": array(TRACE_CODE),
            "reached": array(ANY_OBJECT),
            "totals": obj({"receipts": INT, "sold_to_consumers": array(QUANTITY_OUT), "left": array(QUANTITY_OUT)}),
            "enterprises": array(STRING),
        }
    ),
    "RecallNotices": obj({"notices": array(obj(_NOTICE))}),
    "RecallAcknowledgement": obj({"recall_id": INT, "enterprise": STRING, "acknowledged_at": STRING}),
    "RecallList": obj({"recalls": array(obj({"trace_code": TRACE_CODE, "level": STRING, "issued_at": STRING}))}),
    "BatchView": obj(
        {
            "trace_code": TRACE_CODE,
            "view": {"enum": ["public", "partial", "full"]},
            "product": obj({"goods_code": STRING, "name": STRING, "category": STRING}),
            "quantity": QUANTITY_OUT,
            "events": array(
                obj(
                    {
                        "event_id": STRING,
                        "seq": INT,
                        "hash": HEX,
                        "prev_hash": HEX,
                        "proof_url": STRING,
                        "node": ANY_OBJECT,
                    }
                )
            ),
        }
    ),
    "Trace": obj(
        {
            "trace_code": TRACE_CODE,
            "direction": {"enum": ["backward", "forward"]},
            "batches": array(obj({"trace_code": TRACE_CODE, "depth": INT, "nodes": array(ANY_OBJECT)})),
            "edges": array(obj({"from": TRACE_CODE, "to": TRACE_CODE, "transformation": STRING})),
        }
    ),
    "Identifier": obj({"trace_code": TRACE_CODE, "url": STRING}),
    "Anomalies": obj({"anomalies": array(obj({"kind": STRING})), "kinds": ANY_OBJECT}),
    "Ratings": obj(
        {"enterprises": array(obj({"uscc": STRING, "score": nullable({"type": "number"}), "grade": nullable(STRING)}))}
    ),
    "Credit": obj(
        {
            "uscc": STRING,
            "name": STRING,
            "score": nullable({"type": "number"}),
            "grade": nullable(STRING),
            "factors": {"type": ["array", "object"]},
            "history": array(ANY_OBJECT),
        }
    ),
    "Package": ANY_OBJECT,
    "Registered": ANY_OBJECT,
    "RegisteredList": obj({"items": array(ANY_OBJECT), "limit": INT, "offset": INT}),
    "Enterprise": obj(
        {"name": text(bounds.NAME), "uscc": {"type": "string", "maxLength": 18}},
        {
            "name_en": text(bounds.NAME),
            "contact": text(bounds.NAME),
            "licences": {
                "type": "object",
                "maxProperties": bounds.MAX_DOCUMENTS,
                "additionalProperties": text(bounds.DOCUMENT_NUMBER),
            },
        },
    ),
    "Node": obj(
        {
            "enterprise": {"type": "string", "maxLength": 18},
            "type": {"enum": sorted(NODE_TYPES)},
            "area_code": {"type": "string", "pattern": "^[1-8][0-9]{5}$"},
            "name": text(bounds.NAME),
        },
        {
            "name_en": text(bounds.NAME),
            "address": text(bounds.ADDRESS),
            "latitude": bounds.LATITUDE.schema(),
            "longitude": bounds.LONGITUDE.schema(),
            "code": {"type": "string", "pattern": r"^[0-9A-Za-z\-_.]{1,40}$"},
            "gln": {"type": "string", "pattern": "^[0-9]{13}$"},
        },
    ),
    "Operator": obj(
        {
            "node": text(bounds.CODE),
            "code": {"type": "string", "pattern": r"^[0-9A-Za-z\-_.]{1,40}$"},
            "name": text(bounds.NAME),
        },
        {"stall_no": text(bounds.CODE), "contact": text(bounds.NAME)},
    ),
    "Product": obj(
        {
            "category": {"enum": sorted(PRODUCT_CATEGORIES)},
            "goods_code": {"type": "string", "pattern": r"^[0-9A-Za-z\-]{1,32}$"},
            "name": text(bounds.NAME),
        },
        {
            "name_en": text(bounds.NAME),
            "gtin": {"type": "string", "pattern": "^[0-9]{8,14}$"},
            "default_uom": {"enum": sorted(UNITS)},
            "shelf_life_days": {"type": "integer", "minimum": 1, "maximum": 36500},
        },
    ),
    "InputProduct": obj(
        {
            "registration_no": text(bounds.CODE, description="农药登记证号, 兽药批准文号 or 饲料添加剂批准文号"),
            "kind": {"enum": sorted(farm.INPUT_KINDS)},
            "name": text(bounds.NAME),
            "interval_days": {"type": "integer", "minimum": 0, "maximum": farm.MAX_INTERVAL_DAYS},
        },
        {
            "name_en": text(bounds.NAME),
            "active_ingredient": text(bounds.NAME),
            "applies_to": text(bounds.NAME),
            "source": text(bounds.LONG_TEXT, description="where the interval comes from; required unless it is 0"),
        },
        closed=True,
    ),
    "InputProducts": obj({"items": array(obj({"registration_no": STRING, "interval_days": INT}))}),
    "InputRecord": obj(
        {
            "record_id": UUID,
            "unit": {"type": "string", "pattern": r"^[0-9A-Za-z\-_.]{1,40}$"},
            "unit_kind": {"enum": sorted(farm.UNIT_KINDS)},
            "kind": {"enum": sorted(farm.INPUT_KINDS)},
            "applied_on": DAY,
        },
        {
            "registration_no": text(bounds.CODE),
            "product": text(bounds.NAME),
            "active_ingredient": text(bounds.NAME),
            "dose": obj({"value": farm.DOSE.schema(), "uom": {"enum": sorted(farm.DOSE_UNITS)}}, closed=True),
            "animals": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            "note": text(bounds.LONG_TEXT),
        },
        closed=True,
    ),
    "InputRecorded": obj({"record_id": STRING, "unit": STRING, "kind": STRING, "safe_from": STRING}),
    "InputRecords": obj({"items": array(ref("InputRecorded"))}),
    "Device": obj({"node": text(bounds.CODE), "name": text(120)}, {"operator": text(bounds.CODE)}),
    "TokenRequest": obj(
        {"role": {"enum": ["admin", "regulator", "enterprise"]}, "name": text(bounds.NAME)},
        {
            "enterprise": {"type": "string", "maxLength": 18},
            "authority": text(100),
            "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        },
    ),
    "Token": obj({"id": INT, "role": STRING, "name": STRING, "credential": STRING}),
    "TokenInfo": obj(
        {"id": INT, "role": STRING, "name": STRING, "state": {"enum": ["active", "revoked", "expired"]}},
        {
            "authority": nullable(STRING),
            "enterprise": nullable(STRING),
            "created_at": STRING,
            "expires_at": nullable(STRING),
            "revoked_at": nullable(STRING),
            "replaced_by": nullable(INT),
        },
    ),
    "TokenList": obj({"items": array(ref("TokenInfo")), "limit": INT, "offset": INT}),
    "UserRequest": obj(
        {"name": text(100), "role": {"enum": ["regulator", "admin"]}, "password": text(1024)},
        {"authority": text(100)},
    ),
    "User": obj({"id": INT, "name": STRING, "role": STRING}, {"authority": nullable(STRING)}),
    "UserList": obj({"items": array(ref("User")), "limit": INT, "offset": INT}),
    "PasswordRequest": obj({"password": text(1024)}),
    "AuthorityRequest": obj({"authority": text(100)}),
    "AccessLog": obj(
        {
            "items": array(obj({"id": INT, "at": STRING, "action": STRING, "target": STRING, "actor": obj({})})),
            "next": nullable(INT),
        },
    ),
    "StationReport": obj(
        {"pending": {"type": "integer", "minimum": 0, "maximum": 10_000_000}},
        {
            "oldestPendingAge": {"type": "integer", "minimum": 0, "maximum": 366 * 86400},
            "codesLeft": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
        },
        closed=True,
    ),
    "StationReportAck": obj({"device": INT, "pending": INT, "reportedAt": STRING}),
    "Witness": obj({"name": text(bounds.NAME), "verifier_key": text(400)}),
    "Log": obj({"log_id": STRING, "origin": STRING, "public_key": STRING, "checkpoint": STRING}),
    "Checkpoints": obj(
        {"log_id": STRING, "origin": STRING, "checkpoints": array(obj({"size": INT})), "next": nullable(STRING)}
    ),
    "Proof": obj({**_PROVED, "log_id": STRING, "tree_size": INT, "checkpoint": _NOTE}),
    "BatchProofs": obj({**_BUNDLE, "trace_code": STRING, "next": nullable(STRING)}, {"missing": array(STRING)}),
    "Proofs": obj({**_BUNDLE, "missing": array({"type": ["string", "integer"]})}),
    "Consistency": obj({"log_id": STRING, "first": INT, "second": INT, "proof": array(STRING)}),
    "Cosigned": obj({"accepted": {"type": ["array", "boolean", "integer"]}}),
    "Enrolment": obj({"device": INT, "node": STRING, "code": STRING, "expiresAt": STRING}),
    "Station": obj({"keyId": STRING, "device": ANY_OBJECT, "node": ANY_OBJECT}),
    "StationKeys": obj({"items": array(obj({"keyId": STRING, "createdAt": STRING}))}),
    "Revoked": obj({"revoked": {"type": ["array", "integer"]}}),
    "Signatures": obj({"items": array(obj({"upload": INT, "keyId": STRING, "verified": BOOL}))}),
    "EnrolRequest": obj({"publicKey": STRING, "code": text(64)}),
    "KeyRotation": obj({"publicKey": STRING, "proof": STRING}),
    "LeaseRequest": obj({}, {"blocks": {"type": "integer", "minimum": 1, "maximum": 20}}),
    "Leases": obj(
        {"blocks": array(obj({"blockNo": INT, "firstCode": TRACE_CODE, "lastCode": TRACE_CODE, "size": INT}))}
    ),
    "Lease": obj({"traceCode": TRACE_CODE, "status": {"enum": ["recorded", "syncing"]}, "node": ANY_OBJECT}),
    "Health": obj({"status": {"const": "ok"}}),
    "Products": obj({"items": array(obj({"goodsCode": STRING, "name": STRING})), "limit": INT, "offset": INT}),
    "VendorCardRequest": obj({"pin": {"type": "string", "pattern": "^[0-9]{4,12}$"}}),
    "VendorCard": obj({"card": STRING, "issuedAt": STRING}),
    "Verdict": obj(
        {
            "trace_code": TRACE_CODE,
            "state": {"enum": ["ok", "recalled", "on_hold", "expired"]},
            "use": {"enum": ["eat", "use"]},
            "headline": obj({"zh": STRING, "en": STRING}),
            "detail": obj({"zh": STRING, "en": STRING}),
            "since": nullable(STRING),
            "expires_on": nullable(STRING),
            "source": nullable(STRING),
            "recall": nullable(ANY_OBJECT),
            "failed_test": nullable(ANY_OBJECT),
            "checked_at": STRING,
        }
    ),
    "StationWatchlist": obj(
        {
            "node": STRING,
            "generatedAt": STRING,
            "days": INT,
            "items": array(
                obj(
                    {
                        "traceCode": TRACE_CODE,
                        "state": {"enum": ["ok", "recalled", "on_hold", "expired"]},
                        "inStock": BOOL,
                    }
                )
            ),
        }
    ),
}
