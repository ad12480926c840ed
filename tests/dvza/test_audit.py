"""The audit log is append-only in the database, and no data leaves without an audit record."""

from __future__ import annotations

import typing as t

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from oauth.tokens import import_qualification_token


def _one_record(app: t.Any) -> None:
    with app.extensions["dvza.db"].sessionmaker() as session:
        import_qualification_token(session, "audit-token-000000000000000000", patient_id="p", gegevensdiensten=["48"])
        session.commit()
    app.test_client().get("/fhir/Patient", headers={"Authorization": "Bearer audit-token-000000000000000000"})


@pytest.mark.parametrize("statement", ["UPDATE audit_event SET outcome = 'x'", "DELETE FROM audit_event"])
def test_audit_rows_cannot_be_changed_or_deleted(app: t.Any, statement: str) -> None:
    _one_record(app)
    engine = app.extensions["dvza.db"].engine
    with pytest.raises(DatabaseError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_event")).scalar() == 1


def test_data_is_withheld_when_the_audit_record_fails(app: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.extensions["dvza.db"].sessionmaker() as session:
        import_qualification_token(session, "audit-token-000000000000000000", patient_id="p", gegevensdiensten=["48"])
        session.commit()

    def broken(event: t.Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.extensions["dvza.audit"], "record", broken)
    headers = {"Authorization": "Bearer audit-token-000000000000000000"}
    response = app.test_client().get("/fhir/Patient", headers=headers)
    assert response.status_code == 500
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert "entry" not in response.get_data(as_text=True)


def test_audit_lines_go_to_the_configured_file(databases: t.Any, tmp_path_factory: t.Any, tmp_path: t.Any) -> None:
    import json
    import logging

    from tests.support import make_app

    log_file = tmp_path / "audit.jsonl"
    app = make_app(databases, tmp_path_factory, AUDIT_LOG_FILE=str(log_file))
    try:
        _one_record(app)
        for handler in logging.getLogger("dvza.audit").handlers:
            handler.flush()
        lines = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert lines[-1]["event_type"] == "fhir.type-search" and lines[-1]["patient_id"] == "p"
    finally:
        logger = logging.getLogger("dvza.audit")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        app.extensions["dvza.db"].dispose()
