"""JSON Schemas of the federation's bodies and answers (docs/federation.md), beside :mod:`.schemas`."""

from __future__ import annotations

from traceability.http.schemas import ANY_OBJECT, BOOL, INT, RECEIPT, STRING, Schema, array, nullable, obj, ref

COMPONENTS: dict[str, Schema] = {
    "Federation": obj({"own": nullable(STRING), "members": array(obj({"origin": STRING, "url": STRING}))}),
    "Voucher": obj({k: STRING for k in ("format", "origin", "trace_code", "event_id", "event_hash", "checkpoint")}),
    "Handover": obj({"voucher": {"type": ["object", "string"]}, "event": ref("Event")}, closed=True),
    "HandoverAnswer": obj({**RECEIPT["properties"], "origin": STRING, "shipment": STRING, "checkpointSize": INT}),
    "NoticeAnswer": obj(
        {"origin": STRING, "notice": STRING, "replayed": BOOL, "recalls": array(INT), "batches": array(STRING)}
    ),
    "FederatedTrace": obj({"trace_code": STRING, "direction": STRING, "batches": array(ANY_OBJECT)}),
}
