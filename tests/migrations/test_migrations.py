"""Schema migrations (issue 12): the models and the migrations agree, the release in ``.ci/upgrade-from``
built exactly the schema of its revision (0001 for the last release without migrations), a database that
release made — with its data — upgrades to the newest revision and answers as one the current code filled,
upgrades are atomic and safe to run concurrently.

Runs on SQLite and, in the PostgreSQL pass of ``make test``, on PostgreSQL. The release's code comes from git
(``tests/released.py``); without the commit (a shallow clone) those tests skip and say so.
"""

from __future__ import annotations

import json
import multiprocessing
import typing as t
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text

from dvza import migrate
from tests import released
from tests.support import CERT_SETS
from tests.support import NICTIZ
from tests.support import TOKENS
from tests.support import DatabaseFactory
from tests.support import load_cert_data
from tests.support import make_app
from tests.support import needs_shared

TODAY = date(2026, 11, 2)


@pytest.fixture(scope="module")
def release_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = released.release_tree(tmp_path_factory.mktemp("release"))
    if tree is None:
        pytest.skip(f"commit {released.release_commit()[:12]} (.ci/upgrade-from) is not in this clone")
    return tree


def schema_of(url: str) -> dict[str, t.Any]:
    """Everything the database says about its tables: columns (name, type, nullability, default), primary
    key, indexes, unique constraints, foreign keys with their ON DELETE, and triggers."""
    engine = create_engine(url)
    inspector = inspect(engine)
    found: dict[str, t.Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        found[table] = {
            "columns": [(c["name"], str(c["type"].compile(engine.dialect)), c["nullable"], c.get("default"))
                        for c in inspector.get_columns(table)],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                 (f.get("options") or {}).get("ondelete")) for f in inspector.get_foreign_keys(table)),
        }
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"))
        else:
            rows = connection.execute(text("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                                           "WHERE NOT tgisinternal ORDER BY tgname"))
        found["triggers"] = [tuple(row) for row in rows]
    engine.dispose()
    return found


def revision_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return migrate.current(engine)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(databases: DatabaseFactory) -> None:
    """Autogenerate finds nothing to do on a database the migrations made: every model change has its migration."""
    engine = create_engine(databases.empty("agree"))
    assert migrate.upgrade(engine) == (None, migrate.head())
    assert migrate.differences(engine) == []
    engine.dispose()


def test_a_partial_index_that_lost_its_where_clause_is_a_difference(databases: DatabaseFactory) -> None:
    """Autogenerate does not compare index WHERE clauses; ``migrate.differences`` does (migration 0004)."""
    engine = create_engine(databases.new("predicate"))
    try:
        assert migrate.differences(engine) == []
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_fhir_resource_hidden_by"))
            connection.execute(text("CREATE INDEX ix_fhir_resource_hidden_by ON fhir_resource (hidden_by)"))
        assert migrate.differences(engine) == [
            ("index predicate", "ix_fhir_resource_hidden_by", None, "hidden_byisnotnull")]
    finally:
        engine.dispose()


def test_the_test_databases_are_at_head(databases: DatabaseFactory) -> None:
    """The suite's template (empty, or made by the release and upgraded) is at the newest revision and matches
    the models, so every other test runs on the schema the code expects."""
    url = databases.new("template-check")
    if databases.template_source:  # a database the release made (recognised as 0001 when it has no history)
        before, after = databases.template_upgrade or (None, None)
        assert before is not None and after == migrate.head()
    engine = create_engine(url)
    assert migrate.current(engine) == migrate.head()
    assert migrate.differences(engine) == []
    engine.dispose()


def test_the_release_schema_is_its_revision(databases: DatabaseFactory, release_tree: Path) -> None:
    """What the release's own ``dvza db init`` built is exactly what our migrations build up to the revision it
    was at — 0001 for the last release without migrations: tables, columns, types, indexes, constraints and the
    audit table's triggers."""
    by_release = databases.empty("by-release")
    released.create_database(release_tree, by_release)
    revision = revision_of(by_release) or migrate.BASELINE
    by_migration = databases.empty("by-migration")
    engine = create_engine(by_migration)
    migrate.upgrade(engine, revision)
    engine.dispose()
    assert schema_of(by_migration) == schema_of(by_release)


def test_release_database_upgrades_and_matches_models(databases: DatabaseFactory, release_tree: Path) -> None:
    """A database the release made upgrades to the newest revision (one without migration history is
    recognised and marked 0001 first) and then matches the models and a database made today."""
    url = databases.empty("release-upgrade")
    released.create_database(release_tree, url)
    revision = revision_of(url)
    engine = create_engine(url)
    assert migrate.upgrade(engine) == (revision or migrate.BASELINE, migrate.head())
    assert migrate.differences(engine) == []
    assert migrate.upgrade(engine) == (migrate.head(), migrate.head())  # again: nothing to do
    engine.dispose()
    assert schema_of(url) == schema_of(databases.new("fresh"))


def _answers(client: t.Any, token: str, queries: list[str]) -> dict[str, t.Any]:
    """Each query's answer with what differs between two loads of the same data taken out: Bundle ids and
    times, ``meta.lastUpdated``, and the server's own base URL (identical here anyway)."""
    answers = {}
    for query in queries:
        response = client.get(f"/fhir/{query}", headers={"Authorization": f"Bearer {token}"})
        body = response.get_json()
        if body.get("resourceType") == "Bundle":
            body.pop("id", None)
            body.pop("meta", None)
            for entry in body.get("entry", []):
                entry.get("resource", {}).get("meta", {}).pop("lastUpdated", None)
        answers[query] = (response.status_code, body)
    return answers


def _observation_queries(client: t.Any, token: str) -> list[str]:
    """Per code of the patient's Observations: a code search and ``$lastn``; and ``$lastn`` of every code."""
    bundle = client.get("/fhir/Observation?_count=1000", headers={"Authorization": f"Bearer {token}"}).get_json()
    codes = sorted({f"{c.get('system', '')}|{c['code']}" for e in bundle.get("entry", [])
                    for c in e["resource"].get("code", {}).get("coding", []) if "code" in c})
    queries = ["Observation/$lastn?_count=1000", "Observation/$lastn?max=3&_count=1000"]
    for code in codes:
        queries += [f"Observation?code={code}", f"Observation/$lastn?code={code}",
                    f"Observation/$lastn?code={code}&max=2"]
    return queries


def test_release_data_upgrades_and_answers_like_a_fresh_load(
    databases: DatabaseFactory, release_tree: Path, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The release loads the BgZ and self-measurement Cert sets and their qualification tokens with its own code;
    after the upgrade (index rows get their patient and type, ``$lastn`` its index from the stored Observations)
    every BgZ search and every code search and ``$lastn`` answers exactly as on a database the current code
    filled with the same data — the tokens the release issued included."""
    needs_shared()
    sets = [CERT_SETS["bgz"], CERT_SETS["selfmeasurements"]]  # as the release loads them
    url = databases.empty("release-data")
    released.run_release(release_tree, url, "testdata", "load", *map(str, sets), "--today", TODAY.isoformat(),
                         "--external-documents", "placeholder")
    released.run_release(release_tree, url, "testdata", "tokens",
                         str(NICTIZ / "Configuration" / "QualificationTokens.json"))
    upgraded = make_app(databases, tmp_path_factory, DATABASE_URL=url, SECRET_KEY="release-database-secret")
    assert revision_of(url) == migrate.head()

    fresh = make_app(databases, tmp_path_factory, SECRET_KEY="release-database-secret")
    from dvza.devtools.bench.urls import BGZ_URLS

    load_cert_data(fresh, "bgz", "selfmeasurements", today=TODAY)

    old_client, new_client = upgraded.test_client(), fresh.test_client()
    for patient in ("medmij-bgz-patient-ts-01", "medmij-bgz-patient-ts-02",
                    "selfmeasurement-patient-kwalificatie1", "selfmeasurement-patient-kwalificatie2"):
        token = TOKENS[patient]
        queries = BGZ_URLS + _observation_queries(new_client, token)
        expected = _answers(new_client, token, queries)
        assert sum(len(body.get("entry", [])) for _, body in expected.values()) > 0, patient
        assert _answers(old_client, token, queries) == expected, patient
    for application in (upgraded, fresh):
        application.extensions["dvza.db"].dispose()


def test_downgrade_returns_to_the_baseline_and_up_again(databases: DatabaseFactory) -> None:
    url = databases.empty("round-trip")
    engine = create_engine(url)
    migrate.upgrade(engine, migrate.BASELINE)
    baseline = schema_of(url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, migrate.BASELINE)
    assert migrate.current(engine) == migrate.BASELINE
    assert schema_of(url) == baseline
    migrate.upgrade(engine)
    assert migrate.differences(engine) == []
    engine.dispose()


def test_an_unknown_schema_is_refused_untouched(databases: DatabaseFactory) -> None:
    """Tables without migration history that are not the release's: refused, nothing created or stamped."""
    url = databases.empty("unknown")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE fhir_resource (pk INTEGER PRIMARY KEY, something TEXT)"))
    before = schema_of(url)
    with pytest.raises(migrate.MigrationError, match="no migration history"):
        migrate.upgrade(engine)
    assert schema_of(url) == before
    assert migrate.current(engine) is None
    engine.dispose()


def test_a_failing_migration_leaves_the_database_as_it_was(databases: DatabaseFactory) -> None:
    """Revision 0003 reads every stored Observation; one that is not JSON makes it fail halfway (after the
    index tables were altered): the whole revision is rolled back, the data and the revision are unchanged."""
    url = databases.empty("atomic")
    engine = create_engine(url)
    migrate.upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO fhir_resource (pk, resource_type, logical_id, patient_id, version_id, last_updated, "
            "json_text, xml_text) VALUES (1, 'Observation', 'broken', 'p1', 1, '2026-01-01T00:00:00Z', "
            "'{not json', '<x/>')"))
        connection.execute(text("INSERT INTO fhir_index_token (resource_pk, param, system, code) "
                                "VALUES (1, 'code', 'http://loinc.org', '29463-7')"))
    before = schema_of(url)
    with pytest.raises(json.JSONDecodeError):
        migrate.upgrade(engine)
    assert migrate.current(engine) == "0002"
    assert schema_of(url) == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM fhir_index_token")).scalar() == 1
    engine.dispose()


def _upgrade_in_process(url: str) -> tuple[str | None, str | None]:
    engine = create_engine(url)
    try:
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_concurrent_upgrades_are_serialised(databases: DatabaseFactory) -> None:
    """Several instances starting at once on one empty database: one upgrades, the others wait for its lock
    and find nothing to do; none fails."""
    url = databases.empty("concurrent")
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.map(_upgrade_in_process, [url] * 3)
    assert sorted(results, key=str) == sorted([(None, migrate.head())] + [(migrate.head(), migrate.head())] * 2,
                                              key=str)
    engine = create_engine(url)
    assert migrate.differences(engine) == []
    engine.dispose()


def test_without_auto_upgrade_an_old_schema_is_refused_until_db_upgrade(
    databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``DB_AUTO_UPGRADE=false``: the app does not start on an older schema; ``dvza db upgrade`` (which works on
    it) brings it there, and then the app starts."""
    from click.testing import CliRunner

    from dvza.cli import main

    url = databases.empty("manual")
    engine = create_engine(url)
    migrate.upgrade(engine, "0002")
    with pytest.raises(migrate.MigrationError, match="dvza db upgrade"):
        make_app(databases, tmp_path_factory, DATABASE_URL=url, DB_AUTO_UPGRADE=False)
    assert migrate.current(engine) == "0002"

    for key, value in {"DVZA_DATABASE_URL": url, "DVZA_DB_AUTO_UPGRADE": "false",
                       "DVZA_INSTANCE_PATH": str(tmp_path_factory.mktemp("cli-instance")),
                       "DVZA_SECRET_KEY": "cli-secret", "DVZA_QUALIFICATION_MODE": "true",
                       "DVZA_LOG_FORMAT": "console", "DVZA_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    result = runner.invoke(main, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert f"database: 0002; this version: {migrate.head()}" in result.output
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"from revision 0002 to {migrate.head()}" in result.output
    result = runner.invoke(main, ["db", "check"])
    assert result.exit_code == 0 and "matches the models" in result.output, result.output
    app = make_app(databases, tmp_path_factory, DATABASE_URL=url, DB_AUTO_UPGRADE=False)
    app.extensions["dvza.db"].dispose()
    engine.dispose()


def test_new_revision_drafts_the_next_migration_from_the_differences(
    databases: DatabaseFactory, tmp_path: Path,
) -> None:
    """``dvza db revision -m …``: the next number, chained to the newest, with what autogenerate found (here an
    index the database lacks), written into the given folder."""
    import shutil

    directory = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    url = databases.empty("revision")
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_fhir_index_lastn_code"))
    written = migrate.new_revision(engine, "restore lastn index", directory=directory)
    engine.dispose()
    assert written.parent == directory / "versions" and written.name.startswith(f"{int(migrate.head()) + 1:04d}_")
    draft = written.read_text()
    assert f"down_revision = '{migrate.head()}'" in draft or f'down_revision = "{migrate.head()}"' in draft
    assert "ix_fhir_index_lastn_code" in draft and "create_index" in draft
    assert not (migrate.MIGRATIONS / "versions" / written.name).exists()  # the package's own folder is untouched
