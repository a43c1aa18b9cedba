"""A regulator's triage of anomalies: severity, status, who follows it up and a note, as an append-only history.

Each change records the whole new state (what the regulator did not change is carried over), who made
it, for which authority, and when. The latest row is the anomaly's state; an anomaly nobody has triaged
is ``new`` at the severity its kind starts with (:data:`traceability.domain.anomalies.DEFAULT_SEVERITY`).
"""

from __future__ import annotations

from typing import Any

from traceability import errors, i18n
from traceability.domain import anomalies as rules
from traceability.domain import bounds
from traceability.domain.access import Principal
from traceability.services import analyzer
from traceability.storage import analysis_repo
from traceability.storage.database import Database

ASSIGNEE_MAX = 100
NOTE_MAX = 2000


async def anomaly(db: Database, anomaly_id: int) -> dict[str, Any]:
    """One anomaly with its triage state and history, explained in both languages."""
    found = await analyzer.list_anomalies(
        db,
        kind=None,
        node=None,
        enterprise=None,
        trace_code=None,
        since=None,
        until=None,
        limit=1,
        offset=0,
        anomaly_id=anomaly_id,
    )
    if not found:
        raise errors.NotFound(f"no anomaly {anomaly_id}")
    async with db.connection() as conn:
        steps = await analysis_repo.triage_history(conn, anomaly_id)
    item = found[0]
    history = [
        {
            "at": s["at"].isoformat(),
            "by": s["actor_name"],
            "authority": s["authority"],
            "severity": s["severity"],
            "status": s["status"],
            "assignee": s["assignee"],
            "note": s["note"],
        }
        for s in steps
    ]
    return {
        "anomaly": item,
        "history": history,
        "statuses": [{"status": s, **i18n.name_fields("triage_status", s)} for s in rules.STATUSES],
        "severities": [{"severity": s, **i18n.name_fields("severity", s)} for s in rules.SEVERITIES],
    }


def _text(form: dict[str, str], key: str, limit: int, *, lines: bool = False) -> str | None:
    """A bounded text field; a note may hold line breaks (each line is checked like any text)."""
    value = (form.get(key) or "").replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise errors.InvalidField(f"{key}: must be at most {limit} characters", field=key)
    for line in value.split("\n") if lines else [value]:
        if (problem := bounds.text_problem(line, limit)) is not None:
            raise errors.InvalidField(f"{key}: {problem}", field=key)
    return value or None


async def triage(db: Database, who: Principal, anomaly_id: int, form: dict[str, str]) -> dict[str, Any]:
    """Record a triage step: the fields given change, the others stay as they were."""
    current = (await anomaly(db, anomaly_id))["anomaly"]
    severity = (form.get("severity") or current["severity"]).strip()
    status = (form.get("status") or current["status"]).strip()
    if severity not in rules.SEVERITIES:
        raise errors.InvalidField(f"severity must be one of: {', '.join(rules.SEVERITIES)}", field="severity")
    if status not in rules.STATUSES:
        raise errors.InvalidField(f"status must be one of: {', '.join(rules.STATUSES)}", field="status")
    assignee = _text(form, "assignee", ASSIGNEE_MAX) if "assignee" in form else current["assignee"]
    note = _text(form, "note", NOTE_MAX, lines=True)
    if status in ("resolved", "dismissed") and not note:
        raise errors.InvalidField("note: say why it is resolved or dismissed", field="note")
    state = {"severity": severity, "status": status, "assignee": assignee, "note": note}
    if all(state[k] == current[k] for k in ("severity", "status", "assignee")) and not note:
        raise errors.InvalidField("nothing changed: change the severity, status or assignee, or add a note")
    actor = {"kind": who.kind, "id": who.id, "name": who.name[:100], "authority": who.authority}

    async def write(conn: Any) -> None:
        await analysis_repo.insert_triage(conn, anomaly_id, actor, state)

    await db.transaction(write)
    return await anomaly(db, anomaly_id)
