"""Helpers shared by the tests: paths to the reference material, tokens, database factories.

The suite runs on SQLite by default. With ``DVZA_TEST_DATABASE_URL`` set to a PostgreSQL URL
(``.ci/run`` starts a server), every database the tests use is a separate PostgreSQL database on
that server, created fresh per use.

Every test database is a copy of one template the factory brings to the newest migration once per session
(``dvza.migrate``): an empty database, or — with ``DVZA_TEST_TEMPLATE_URL`` — a database an earlier release
created (``make test`` passes one made by the release in ``.ci/upgrade-from``), so the suite then runs on
upgraded databases.
"""

from __future__ import annotations

import itertools
import os
import shutil
import typing as t
import uuid
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from dvza.devtools.postgres import create_database
from dvza.devtools.postgres import drop_databases

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DVZA_SHARED_DIR") or REPO.parent / "shared")
NICTIZ = SHARED / "conformance" / "nictiz-testscripts"
STU3 = NICTIZ / "output" / "STU3"
CERT_SETS = {
    "bgz": STU3 / "BgZ-3-0" / "MedMij" / "Cert",
    "pdfa": STU3 / "PDFA-3-0" / "MedMij" / "Cert",
    "questionnaires": STU3 / "Questionnaires-2-0" / "MedMij" / "Cert",
    "selfmeasurements": STU3 / "SelfMeasurements-2-0" / "MedMij" / "Cert",
}
TOKENS_FILE = NICTIZ / "Configuration" / "QualificationTokens.json"

#: Qualification tokens of the Cert patients (QualificationTokens.json, fhir-content.md §2.3/§3.3/§4.2/§5.2)
TOKENS = {
    "medmij-bgz-patient-ts-01": "93cde269-ce35-4077-a39d-19296670e949",  # XXX_Helleman
    "medmij-bgz-patient-ts-02": "6056a9eb-da6a-45dc-b557-e854e138af8f",  # XXX_Mesker
    "example-pdfa-kwalificatie1": "f92b6141-55db-46d5-a3ae-874b69907d22",  # XXX_Baltus
    "example-pdfa-kwalificatie2": "aae7b5aa-d796-4fba-b4d3-852d9043ee66",  # XXX_Schulte
    "example-pdfa-kwalificatie3": "84b0da5a-3816-49ba-9df4-88bc089dd401",  # XXX_Ellens
    "selfmeasurement-patient-kwalificatie1": "d9f8d61b-c236-489f-aba5-b3bebd312c30",  # XXX_Bourgonjee
    "selfmeasurement-patient-kwalificatie2": "06bbe01d-b3cb-4028-8b1c-f731d0241b57",  # XXX_Bergzoon
    "XXXVINK": "9e5ad1fa-3461-4f55-a033-55eb961b290a",
    "XXXREPSCHER": "f9e46b63-c2cb-433c-a84e-2c02e0921c06",
    "XXXBOUMANN": "0dd9618f-ac1f-4ecf-a5a1-440174706ddd",
}

_counter = itertools.count()


def needs_shared() -> None:
    if not STU3.is_dir():
        pytest.skip(f"Nictiz reference material not found at {STU3} (set DVZA_SHARED_DIR)")


class DatabaseFactory:
    """Fresh databases at the newest migration: temp SQLite files, or new databases on the test PostgreSQL
    server; each a copy of one upgraded template (module docstring)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self.tmp = tmp_path_factory.mktemp("db")
        self.server_url = os.environ.get("DVZA_TEST_DATABASE_URL")
        self.template_source = os.environ.get("DVZA_TEST_TEMPLATE_URL")
        self.created: list[str] = []
        self._template: str | None = None
        #: (revision before, revision after) of the template's upgrade
        self.template_upgrade: tuple[str | None, str | None] | None = None

    @property
    def is_postgresql(self) -> bool:
        return bool(self.server_url and self.server_url.startswith("postgresql"))

    def new(self, label: str = "db") -> str:
        """A new database at the newest migration (a copy of the template)."""
        template = self._ensure_template()
        if not self.is_postgresql:
            path = self.tmp / f"{label}-{next(_counter)}.sqlite3"
            shutil.copyfile(make_url(template).database, path)  # type: ignore[arg-type]
            return f"sqlite:///{path}"
        return self._create_postgres(label, template=make_url(template).database)

    def empty(self, label: str = "db") -> str:
        """A new database without any table (for tests of the migrations themselves)."""
        if not self.is_postgresql:
            return f"sqlite:///{self.tmp / f'{label}-{next(_counter)}.sqlite3'}"
        return self._create_postgres(label)

    def _ensure_template(self) -> str:
        if self._template is None:
            from dvza import migrate

            if self.template_source:
                source = make_url(self.template_source)
                if source.drivername.startswith("sqlite"):
                    path = self.tmp / "template.sqlite3"
                    shutil.copyfile(source.database, path)  # type: ignore[arg-type]
                    url = f"sqlite:///{path}"
                else:  # a copy, so the database the release made stays as it was
                    url = self._create_postgres("template", template=source.database)
            else:
                url = self.empty("template")
            engine = create_engine(url)
            self.template_upgrade = migrate.upgrade(engine)
            engine.dispose()  # SQLite: checkpoints the WAL into the file; PostgreSQL: no session left on it
            self._template = url
        return self._template

    def _create_postgres(self, label: str, template: str | None = None) -> str:
        assert self.server_url is not None
        name = f"{make_url(self.server_url).database}_{label}_{uuid.uuid4().hex[:8]}".lower()
        self.created.append(name)
        return create_database(self.server_url, name, template=template)

    def drop_all(self) -> None:
        if self.is_postgresql and self.server_url:
            drop_databases(self.server_url, *reversed(self.created))


def make_app(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory,
             **overrides: t.Any) -> t.Any:
    from dvza import create_app

    config = {
        "TESTING": True,
        "DATABASE_URL": databases.new(),
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "SECRET_KEY": "test-secret-key",
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
        "QUALIFICATION_MODE": True,
        # the development stand-in login, switched on explicitly (tests with QUALIFICATION_MODE=False use it)
        "DEVELOPMENT_LOGIN": True,
    }
    config.update(overrides)
    app = create_app(config)
    return app


def load_cert_data(app: t.Any, *names: str, today: date | None = None) -> t.Any:
    """Load Nictiz Cert sets and the qualification tokens into the app's database (T = ``today``, default the
    real today)."""
    import json

    from dvza import identity
    from dvza.devtools import testdata

    needs_shared()
    cipher = identity.cipher_from_config(app.config)
    database = app.extensions["dvza.db"]
    with app.app_context(), database.sessionmaker() as session:
        report = testdata.load(
            session, [CERT_SETS[n] for n in names], today=today or date.today(), bsn_key=app.config["BSN_HMAC_KEY"],
            bsn_cipher=cipher,
            external_documents="placeholder",
        )
        testdata.import_tokens(session, json.loads(TOKENS_FILE.read_text()),
                               gegevensdiensten=list(app.config["GEGEVENSDIENSTEN"]),
                               bsn_key=app.config["BSN_HMAC_KEY"], bsn_cipher=cipher)
    return report


def bearer(patient_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[patient_id]}"}


def fixture_text(path: Path, **variables: str) -> str:
    """A Nictiz fixture with its date templates materialised (T = today) and ``${name}`` variables set."""
    from dvza.devtools.testdata import materialise

    text = materialise(path.read_text(encoding="utf-8-sig"), date.today())
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, f"unfilled variable in {path.name}"
    return text


def submit_headers(patient_id: str, fmt: str = "json", request_id: str | None = None) -> dict[str, str]:
    mime = {"json": "application/fhir+json", "xml": "application/fhir+xml"}[fmt]
    headers = {**bearer(patient_id), "Content-Type": mime, "Accept": mime, "Prefer": "return=representation",
               "X-Correlation-ID": str(uuid.uuid4())}
    headers["MedMij-Request-ID"] = request_id or str(uuid.uuid4())
    return headers
