"""Databases made by an earlier release, with that release's own code (the commit in ``.ci/upgrade-from``).

The release's tree comes from git (``git archive``; no checkout is touched) and runs in a subprocess with this
virtualenv's packages, its own ``dvza`` first on the path: its ``create_app`` creates the tables the way that
release did, and its ``dvza testdata load`` loads data the way it did. ``python -m tests.released --on-server
URL`` makes one for ``make test`` (``DVZA_TEST_TEMPLATE_URL``) and prints its URL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import typing as t
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UPGRADE_FROM = REPO / ".ci" / "upgrade-from"

_SCRIPT = """
import sys
tree = sys.argv[1]
sys.path.insert(0, tree)
import dvza
assert dvza.__file__.startswith(tree), dvza.__file__
from dvza.cli import main
main(sys.argv[2:])
"""


def release_commit() -> str:
    lines = [line.strip() for line in UPGRADE_FROM.read_text().splitlines()]
    return next(line for line in lines if line and not line.startswith("#"))


def _archive(commit: str) -> bytes | None:
    try:
        return subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO, check=True,
                              capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def release_tree(into: Path, commit: str | None = None) -> Path | None:
    """The release's files under ``into``; a clone that lacks the commit (shallow) fetches it from ``origin``
    first. ``None`` when git or the commit is not available."""
    commit = commit or release_commit()
    archive = _archive(commit)
    if archive is None:
        subprocess.run(["git", "fetch", "--quiet", "origin", commit], cwd=REPO, capture_output=True)
        archive = _archive(commit)
    if archive is None:
        return None
    target = into / f"release-{commit[:12]}"
    if not target.is_dir():
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def run_release(tree: Path, url: str, *args: str, env: t.Mapping[str, str] | None = None) -> str:
    """``dvza ARGS`` of the release on the database ``url``; returns its output."""
    instance = tempfile.mkdtemp(prefix="release-instance-")
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith("DVZA_") or key == "DVZA_SHARED_DIR"
    }
    environment.update({
        "DVZA_DATABASE_URL": url,
        "DVZA_INSTANCE_PATH": instance,
        "DVZA_SECRET_KEY": "release-database-secret",
        "DVZA_QUALIFICATION_MODE": "true",
        "DVZA_DEVELOPMENT_LOGIN": "true",
        "DVZA_LOG_FORMAT": "console",
        "DVZA_LOG_LEVEL": "ERROR",
        **(env or {}),
    })
    result = subprocess.run([sys.executable, "-c", _SCRIPT, str(tree), *args], env=environment, cwd=tree,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the release's `dvza {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_database(tree: Path, url: str) -> None:
    """The release's tables on ``url`` (its ``dvza db init``)."""
    run_release(tree, url, "db", "init")


def new_postgres_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server_url``; returns its URL."""
    from sqlalchemy.engine import make_url

    from dvza.devtools.postgres import create_database

    name = f"{make_url(server_url).database}_release_{release_commit()[:12]}"
    return create_database(server_url, name, replace=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="an empty database (SQLite URL, or a PostgreSQL database)")
    target.add_argument("--on-server", metavar="URL", help="make a new database on this PostgreSQL server")
    arguments = parser.parse_args()
    tree = release_tree(Path(tempfile.mkdtemp(prefix="release-")))
    if tree is None:
        print(f"commit {release_commit()} of .ci/upgrade-from is not in this clone and could not be fetched",
              file=sys.stderr)
        sys.exit(3)
    url = arguments.url or new_postgres_database(arguments.on_server)
    create_database(tree, url)
    print(url)


if __name__ == "__main__":
    main()
