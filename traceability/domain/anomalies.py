"""How serious each kind of anomaly is to start with, and the states a regulator's triage moves it through.

The kinds themselves are the analyzer's (:data:`traceability.services.analyzer.KINDS`); their names, the
severities' and the states' are in the catalogues (``anomaly``, ``severity``, ``triage_status``).
"""

from __future__ import annotations

SEVERITIES = ("high", "medium", "low")
STATUSES = ("new", "investigating", "resolved", "dismissed")
OPEN = ("new", "investigating")

# Goods that may hurt someone reached, or may reach, a buyer: high. A gap in the record: medium.
# A clerical slip: low. A regulator may change an anomaly's severity in triage.
DEFAULT_SEVERITY = {
    "sold_while_recalled": "high",
    "sold_while_on_hold": "high",
    "sale_synced_after_recall": "high",
    "receipt_synced_after_recall": "high",
    "sold_after_expiry": "high",
    "drug_serial_dispensed_twice": "high",
    "opened_inside_interval": "high",  # harvested or slaughtered inside a safety interval, the farm insisting
    "received_inside_interval": "high",
    "cold_chain_breach": "medium",
    "mass_balance_exceeded": "medium",
    "missing_certificate": "medium",
    "received_without_shipment": "medium",
    "event_at_unreached_node": "medium",
    "dormant_past_shelf_life": "low",
    "out_of_time_order": "low",
}


def default_severity(kind: str) -> str:
    """The severity an anomaly of ``kind`` starts with (medium for a kind this table does not know)."""
    return DEFAULT_SEVERITY.get(kind, "medium")
