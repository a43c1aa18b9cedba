"""The command line: registering the world, issuing credentials, and the demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import make_uscc
from tests.test_verify import cli


def test_register_by_cli(db_url: str) -> None:
    uscc = make_uscc(901)
    out = cli(db_url, "enterprise", "add", "--name", "鼓楼菜市场", "--uscc", uscc, "--licence", "food=JY13203020001")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["licences"] == {"food": "JY13203020001"}
    out = cli(
        db_url,
        "node",
        "add",
        "--enterprise",
        uscc,
        "--type",
        "wet_market",
        "--area-code",
        "320302",
        "--name",
        "鼓楼菜市场",
    )
    assert out.returncode == 0, out.stderr
    node = json.loads(out.stdout)
    assert node["area_name"] == "江苏省徐州市鼓楼区" and node["code"].startswith("320302")
    out = cli(db_url, "device", "add", "--node", node["code"], "--name", "gate scanner")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["credential"].startswith("tdv_")
    out = cli(db_url, "device", "list")
    assert "credential" not in out.stdout and "token" not in out.stdout
    out = cli(
        db_url, "node", "add", "--enterprise", uscc, "--type", "wet_market", "--area-code", "000000", "--name", "x"
    )
    assert out.returncode == 2
    assert "area_code" in out.stderr


def test_demo_loads_and_verifies(db_url: str, tmp_path: Path) -> None:
    out = cli(db_url, "demo", "--seed", "2", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    codes = re.findall(r"^  (\d{20})  ", out.stdout, re.MULTILINE)
    assert len(codes) == 10
    assert "a shopper's receipt from stall" in out.stdout  # the first code worth opening: a receipt's whole journey
    for code in codes:
        assert f"/t/{code}\n" in out.stdout and f"/api/v1/batches/{code}\n" in out.stdout
    out = cli(db_url, "verify")
    assert out.returncode == 0 and "all verified" in out.stdout
    again = cli(db_url, "demo", tmp=tmp_path)
    assert again.returncode == 2 and "already loaded" in again.stderr
