"""Notes between member ledgers: a recall notice and a member request verify with the sender's pinned key; a
forged, altered, misdirected, stale or replayed one is refused naming why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from traceability import errors
from traceability.domain import tracecode
from traceability.domain.federation import Federation, Member
from traceability.ledger import checkpoint as notes
from traceability.ledger import federated_notes as fn
from traceability.services import federated_recall

XUZHOU, NANJING = "xuzhou.trace.test/log", "nanjing.trace.test/log"
XZ, NJ = notes.generate_signer(XUZHOU), notes.generate_signer(NANJING)
FED = Federation(
    (
        Member(XUZHOU, "http://xz.test", ("3203",), notes.verifier_key(XZ)),
        Member(NANJING, "http://nj.test", ("3201",), notes.verifier_key(NJ)),
    ),
    NANJING,
)
CODE = tracecode.make("320311", 7)


def body(**change: Any) -> dict[str, Any]:
    return {
        "id": "recall-1",
        "to": NANJING,
        "issued_at": datetime.now(UTC).isoformat(),
        "level": "I",
        "reason": "非洲猪瘟阳性",
        "authority": "徐州市市场监督管理局",
        "source": CODE,
        "codes": [CODE],
        **change,
    }


def refused(note: str) -> str:
    with pytest.raises(errors.NoticeRefused) as caught:
        federated_recall.check_notice(FED, note, datetime.now(UTC))
    assert " · " in caught.value.message  # Chinese · English
    return caught.value.code


def test_a_recall_notice_verifies_with_the_pinned_key() -> None:
    note = fn.sign_recall(XZ, body(scope="2026-11 批次"))
    got = federated_recall.check_notice(FED, note, datetime.now(UTC))
    assert (got.origin, got.to, got.codes, got.scope, got.level) == (XUZHOU, NANJING, (CODE,), "2026-11 批次", "I")
    assert got.digest == federated_recall.check_notice(FED, note, datetime.now(UTC)).digest


def test_forged_misdirected_and_stale_notices_are_refused() -> None:
    assert refused(fn.sign_recall(notes.generate_signer(XUZHOU), body())) == "notice_bad_signature"
    note = fn.sign_recall(XZ, body())
    assert refused(note.replace("非洲猪瘟阳性", "标签错误")) == "notice_bad_signature"
    assert refused(fn.sign_recall(NJ, body())) == "notice_unknown_ledger"  # from this very ledger
    assert refused(fn.sign_recall(notes.generate_signer("other.test/log"), body())) == "notice_unknown_ledger"
    assert refused(fn.sign_recall(XZ, body(to="suzhou.trace.test/log"))) == "notice_wrong_recipient"
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    assert refused(fn.sign_recall(XZ, body(issued_at=old))) == "notice_stale"
    assert refused(fn.sign_recall(XZ, body(codes=[]))) == "notice_malformed"
    assert refused(fn.sign_recall(XZ, body(colour="red"))) == "notice_malformed"
    assert refused("hello\n") == "notice_malformed"
    # A checkpoint signed by the same key is no notice, and a notice is no checkpoint.
    assert refused(notes.sign_checkpoint(XUZHOU, 3, b"\0" * 32, XZ)) == "notice_malformed"
    with pytest.raises(notes.NoteError):
        notes.verify_checkpoint(note, notes.verifier_for(XZ), origin=XUZHOU)


def test_a_member_request_is_for_one_ledger_one_request_and_recent() -> None:
    now = 1_800_000_000
    header = fn.sign_request(XZ, NANJING, "GET", f"/api/v1/batches/{CODE}/trace?direction=forward", now)
    note, origin = fn.request_sender(header)
    key = notes.verifier_for(XZ)
    assert origin == XUZHOU
    fn.verify_request(note, key, NANJING, "GET", f"/api/v1/batches/{CODE}/trace?direction=forward", now + 10)
    for own, path, at, reason in (
        ("suzhou.trace.test/log", f"/api/v1/batches/{CODE}/trace?direction=forward", now, "wrong_request"),
        (NANJING, f"/api/v1/batches/{CODE}/trace?direction=backward", now, "wrong_request"),
        (NANJING, f"/api/v1/batches/{CODE}/trace?direction=forward", now + fn.REQUEST_SKEW + 1, "stale"),
    ):
        with pytest.raises(fn.NoticeError) as caught:
            fn.verify_request(note, key, own, "GET", path, at)
        assert caught.value.reason == reason
    with pytest.raises(fn.NoticeError) as caught:
        fn.verify_request(note, notes.verifier_for(notes.generate_signer(XUZHOU)), NANJING, "GET", "/", now)
    assert caught.value.reason == "bad_signature"
