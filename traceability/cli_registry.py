"""The registry commands' flags (``traceability node add --type …``): they become the same JSON body the
admin API takes, so the command line and the API share one validation."""

from __future__ import annotations

from typing import Any

REGISTRY: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "enterprise": (
        "enterprises",
        [
            ("--name", {"required": True}),
            ("--uscc", {"required": True}),
            ("--name-en", {}),
            ("--contact", {}),
            ("--licence", {"action": "append", "metavar": "KIND=NUMBER"}),
        ],
    ),
    "node": (
        "nodes",
        [
            ("--enterprise", {"required": True, "help": "USCC of the owning enterprise"}),
            ("--type", {"required": True}),
            ("--area-code", {"required": True}),
            ("--name", {"required": True}),
            ("--name-en", {}),
            ("--address", {}),
            ("--latitude", {"type": float}),
            ("--longitude", {"type": float}),
            ("--code", {}),
            ("--gln", {}),
        ],
    ),
    "operator": (
        "operators",
        [
            ("--node", {"required": True}),
            ("--code", {"required": True}),
            ("--name", {"required": True}),
            ("--stall-no", {}),
            ("--contact", {}),
        ],
    ),
    "product": (
        "products",
        [
            ("--category", {"required": True}),
            ("--goods-code", {"required": True}),
            ("--name", {"required": True}),
            ("--name-en", {}),
            ("--gtin", {}),
            ("--default-uom", {}),
            ("--shelf-life-days", {"type": int}),
        ],
    ),
    "input": (
        "inputs (pesticides, veterinary drugs, … with their safety intervals)",
        [
            ("--registration-no", {"required": True, "help": "农药登记证号, 兽药批准文号 or 饲料添加剂批准文号"}),
            ("--kind", {"required": True}),
            ("--name", {"required": True}),
            ("--name-en", {}),
            ("--active-ingredient", {}),
            ("--applies-to", {"help": "the crops or species the interval is stated for"}),
            ("--interval-days", {"type": int, "required": True}),
            ("--source", {"help": "the label, standard or announcement the interval comes from"}),
        ],
    ),
    "device": (
        "devices",
        [
            ("--node", {"required": True}),
            ("--name", {"required": True}),
            ("--operator", {}),
        ],
    ),
}
