"""Mass balance's terms: the tolerance per category, the units of mass, the steps that take goods out of a node,
and a quantity in a batch's terms.

Kept apart from :mod:`traceability.domain.supply` (which names them too), so the anomaly analyzer, which
balances every node's stock, loads these and not the registries the rest of the supply rules need.
"""

from __future__ import annotations

from decimal import Decimal

MASS_TOLERANCE: dict[str, Decimal] = {
    "meat": Decimal("0.02"),  # chilling and cutting lose weight; 2 % covers scale error
    "vegetable": Decimal("0.05"),  # washing and misting add water
    "drug": Decimal("0"),  # units are counted: no tolerance
    "dairy": Decimal("0.02"),  # separation and standardisation lose, never gain; 2 % covers scale error
    "other": Decimal("0.02"),
}
KILOGRAMS: dict[str, Decimal] = {"KGM": Decimal(1), "GRM": Decimal("0.001"), "TNE": Decimal(1000)}
SALE_STEPS = frozenset({"retail_selling", "shipping", "dispensing"})


def in_batch_terms(quantity: dict[str, str] | None, batch_uom: str, fallback: Decimal) -> Decimal:
    """A quantity in the batch's terms: kilograms for masses, the batch's unit for counts."""
    if quantity is None:
        return fallback
    value = Decimal(quantity["value"])
    uom = quantity.get("uom")  # EPCIS leaves it out for a count of the class's items
    if uom is None:
        return Decimal(0) if batch_uom in KILOGRAMS else value
    if batch_uom in KILOGRAMS and uom in KILOGRAMS:
        return value * KILOGRAMS[uom] / KILOGRAMS[batch_uom]
    if uom == batch_uom:
        return value
    return Decimal(0)  # a different unit (boxes of a batch counted in kg) cannot be balanced
