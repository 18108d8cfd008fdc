"""setup.cfg and the source tree agree: every package is shipped, every shipped package
exists, and the data folders travel inside the wheel."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _options() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["options"]


def _listed() -> set[str]:
    return {line.strip() for line in _options()["packages"].splitlines() if line.strip()}


def test_every_python_package_in_the_source_tree_is_listed():
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "hybrid_gp").rglob("__init__.py")}
    assert found <= _listed(), f"missing from setup.cfg: {sorted(found - _listed())}"


def test_every_listed_package_exists():
    mapped = {line.split("=")[0].strip(): line.split("=")[1].strip()
              for line in _options()["package_dir"].splitlines() if "=" in line}
    for name in _listed():
        folder = ROOT / mapped.get(name, name.replace(".", "/"))
        assert folder.is_dir(), f"setup.cfg lists {name}, but {folder} does not exist"


def test_grammars_and_problems_ship_as_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    data = cfg["options.package_data"]
    assert data["hybrid_gp.grammars"].strip() == "*.toml"
    assert data["hybrid_gp.problems"].strip() == "*.toml"
    assert any((ROOT / "grammars").glob("*.toml")) and any((ROOT / "problems").glob("*.toml"))
