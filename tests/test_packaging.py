"""The installed package (wheel, Docker image) carries every template, stylesheet, schema and data file:
``[options.package_data]`` in setup.cfg must match each non-Python file inside the packages."""

from __future__ import annotations

from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dvza", "oauth", "fhir_api", "medmij_lists", "certs")


def test_package_data_covers_every_resource_file() -> None:
    patterns = read_configuration(ROOT / "setup.cfg")["options"]["package_data"][""]  # "*" in setup.cfg
    missing = []
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            # the closest package (folder with __init__.py) is what package_data patterns are relative to
            package = next(p for p in path.parents if (p / "__init__.py").exists())
            relative = path.relative_to(package)
            if not any(relative.match(pattern) and len(relative.parts) == len(Path(pattern).parts)
                       for pattern in patterns):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == [], f"not in [options.package_data]: {missing}"
