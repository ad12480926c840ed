"""The installed package (wheel, Docker image) carries every template, stylesheet, schema and data file,
and building it gives no setuptools "Package would be ignored" warnings; the set-up steps of `make test`
say what they do instead of staying silent for minutes (issue 17, "Everyone")."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dvza", "oauth", "fhir_api", "medmij_lists", "certs")


def _resource_files() -> list[Path]:
    files = []
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                files.append(path)
    return files


def test_package_data_covers_every_resource_file() -> None:
    patterns = read_configuration(ROOT / "setup.cfg")["options"]["package_data"][""]  # "*" in setup.cfg
    # with `find_namespace:` every folder is a package: patterns are relative to the file's own folder
    missing = [str(path.relative_to(ROOT)) for path in _resource_files()
               if not any(Path(path.name).match(pattern) for pattern in patterns)]
    assert missing == [], f"not in [options.package_data]: {missing}"


def test_every_folder_with_data_is_a_listed_package() -> None:
    """setuptools warns "Package would be ignored" for a data folder Python could import but that is
    missing from ``packages`` (setuptools build_py ``_IncludePackageDataAbuse``)."""
    packages = set(read_configuration(ROOT / "setup.cfg")["options"]["packages"])
    folders = {".".join(path.parent.relative_to(ROOT).parts) for path in _resource_files()}
    assert folders - packages == set()
    assert not any("__pycache__" in name for name in packages)


def test_set_up_steps_are_not_silent() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(STAMP): setup.cfg pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "@echo" in recipe and "pip install" in recipe
    assert not re.search(r"pip install[^\n]*(--quiet|\s-q\b)", recipe)
    for script in (".ci/browser.sh", ".ci/postgres.sh"):
        text = (ROOT / script).read_text()
        installs = [line for line in text.splitlines() if "apt-get" in line]
        assert installs and all("-qq" not in line and ">/dev/null" not in line for line in installs), script
        assert "echo \"== installing" in text, script


def test_the_migrations_are_in_the_package() -> None:
    """``dvza db upgrade`` in the Docker image needs the revisions and Alembic's script template."""
    packages = set(read_configuration(ROOT / "setup.cfg")["options"]["packages"])
    assert {"dvza.migrations", "dvza.migrations.versions"} <= packages
    assert list((ROOT / "dvza" / "migrations" / "versions").glob("0001_*.py"))
    assert (ROOT / "dvza" / "migrations" / "script.py.mako").is_file()
