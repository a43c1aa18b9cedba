"""Mass balance's terms: the tolerance per category, the units of mass, the steps that take goods out of a node.

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
