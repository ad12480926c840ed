"""Staff sign-in on the hospital pages (issue 13): throttled per account and per address in storage
that all workers and hosts share, the same work for unknown and known names, every attempt audited."""

from __future__ import annotations

import re
import typing as t

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dvza.models import AuditRecord
from dvza.ratelimit import RateLimitCounter
from tests.support import make_app

PASSWORD = "correct horse battery"


def staff_app(databases: t.Any, tmp_path_factory: t.Any, **config: t.Any) -> t.Any:
    return make_app(databases, tmp_path_factory, HOSPITAL_USERS={
        "anna": generate_password_hash(PASSWORD), "bram": generate_password_hash(PASSWORD)}, **config)


@pytest.fixture()
def sapp(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = staff_app(databases, tmp_path_factory, SIGN_IN_LIMIT_PER_ACCOUNT="3 per 15 minutes",
                    SIGN_IN_LIMIT_PER_ADDRESS="5 per 15 minutes")
    yield app
    app.extensions["dvza.db"].dispose()


class Staff:
    """A browser on the hospital's sign-in page, from one address."""

    def __init__(self, app: t.Any, address: str = "192.0.2.10"):
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address

    def sign_in(self, name: str, password: str) -> t.Any:
        page = self.client.get("/ziekenhuis/inloggen").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        return self.client.post("/ziekenhuis/inloggen", data={"csrf_token": token.group(1), "name": name,
                                                              "password": password})


def audit(app: t.Any, event_type: str) -> list[AuditRecord]:
    with app.extensions["dvza.db"].sessionmaker() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.event_type == event_type)
                                    .order_by(AuditRecord.id)))


def test_wrong_passwords_for_one_account_are_throttled(sapp: t.Any) -> None:
    attacker = Staff(sapp)
    for _ in range(3):
        assert attacker.sign_in("anna", "guess").status_code == 401
    refused = attacker.sign_in("anna", PASSWORD)  # the right password no longer helps
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert "te vaak een verkeerde naam of een verkeerd wachtwoord" in html and "minuten" in html
    assert '<html lang="nl">' in html and 'role="alert"' in html
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert refused.headers["Cache-Control"] == "no-store"
    # the same account from another address is throttled too: the limit is per account
    assert Staff(sapp, "198.51.100.7").sign_in("anna", PASSWORD).status_code == 429
    # another account is not
    assert Staff(sapp, "198.51.100.7").sign_in("bram", PASSWORD).status_code == 303


def test_one_address_trying_many_names_is_throttled(sapp: t.Any) -> None:
    sprayer = Staff(sapp)
    for number in range(5):
        assert sprayer.sign_in(f"user{number}", "Welkom01").status_code == 401
    assert sprayer.sign_in("bram", PASSWORD).status_code == 429
    assert Staff(sapp, "203.0.113.5").sign_in("bram", PASSWORD).status_code == 303


def test_only_refused_attempts_count(sapp: t.Any) -> None:
    staff = Staff(sapp)
    for _ in range(6):
        assert staff.sign_in("anna", PASSWORD).status_code == 303
    assert staff.sign_in("anna", "typo").status_code == 401
    assert staff.sign_in("anna", PASSWORD).status_code == 303
    # a form without its CSRF token is refused (400) without counting
    for _ in range(5):
        assert staff.client.post("/ziekenhuis/inloggen", data={"name": "anna", "password": "x"}).status_code == 400
    assert staff.sign_in("anna", PASSWORD).status_code == 303


def test_the_counters_are_shared_by_every_worker_and_host(databases: t.Any, tmp_path_factory: t.Any) -> None:
    """Two app instances on one database, as two gunicorn workers or two hosts are."""
    url = databases.new("shared")
    first = staff_app(databases, tmp_path_factory, DATABASE_URL=url, SIGN_IN_LIMIT_PER_ACCOUNT="2 per hour")
    second = staff_app(databases, tmp_path_factory, DATABASE_URL=url, SIGN_IN_LIMIT_PER_ACCOUNT="2 per hour")
    try:
        assert Staff(first).sign_in("anna", "a").status_code == 401
        assert Staff(second).sign_in("anna", "b").status_code == 401
        assert Staff(first).sign_in("anna", PASSWORD).status_code == 429
        assert Staff(second).sign_in("anna", PASSWORD).status_code == 429
        with first.extensions["dvza.db"].sessionmaker() as session:
            keys = session.scalars(select(RateLimitCounter.key_hash)).all()
        assert keys and all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)  # what was typed is not stored
    finally:
        first.extensions["dvza.db"].dispose()
        second.extensions["dvza.db"].dispose()


def test_a_configured_storage_is_used(databases: t.Any, tmp_path_factory: t.Any) -> None:
    from limits.storage import MemoryStorage

    app = staff_app(databases, tmp_path_factory, RATE_LIMIT_STORAGE_URI="memory://",
                    SIGN_IN_LIMIT_PER_ACCOUNT="1 per hour")
    try:
        limiter = app.extensions["dvza.sign_in_limiter"]
        assert isinstance(limiter.storage, MemoryStorage)
        assert Staff(app).sign_in("anna", "x").status_code == 401
        assert Staff(app).sign_in("anna", PASSWORD).status_code == 429
        with app.extensions["dvza.db"].sessionmaker() as session:
            assert session.scalars(select(RateLimitCounter)).all() == []
    finally:
        app.extensions["dvza.db"].dispose()


def test_the_database_counter_is_atomic_under_concurrency(sapp: t.Any) -> None:
    """Many workers counting the same key at once lose no count (INSERT … ON CONFLICT DO UPDATE)."""
    import threading

    from dvza.ratelimit import DatabaseStorage

    storages = [DatabaseStorage(database=sapp.extensions["dvza.db"]) for _ in range(6)]
    start = threading.Barrier(len(storages))
    counts: list[int] = []

    def hammer(storage: DatabaseStorage) -> None:
        start.wait()
        for _ in range(10):
            counts.append(storage.incr("account:anna", 900))

    threads = [threading.Thread(target=hammer, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storages[0].get("account:anna") == 60
    assert sorted(counts) == list(range(1, 61))  # every increment saw its own, unique count
    storages[0].clear("account:anna")
    assert storages[0].get("account:anna") == 0


def test_a_window_that_ended_starts_again(sapp: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from dvza import ratelimit

    storage = ratelimit.DatabaseStorage(database=sapp.extensions["dvza.db"])
    now = time.time()
    monkeypatch.setattr(storage, "clock", lambda: now)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get_expiry("k") == now + 60
    monkeypatch.setattr(storage, "clock", lambda: now + 61)
    assert storage.get("k") == 0 and storage.incr("k", 60) == 1 and storage.get_expiry("k") == now + 121


@pytest.mark.parametrize("setting", ["SIGN_IN_LIMIT_PER_ACCOUNT", "SIGN_IN_LIMIT_PER_ADDRESS"])
def test_a_bad_limit_stops_the_start(databases: t.Any, tmp_path_factory: t.Any, setting: str) -> None:
    from dvza.config import ConfigError

    with pytest.raises(ConfigError, match=setting):
        staff_app(databases, tmp_path_factory, **{setting: "often"})


def test_unknown_and_known_names_cost_the_same_work(sapp: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No timing oracle: a password hash is computed, with the same method and cost, whether or not the
    name exists (OWASP Authentication Cheat Sheet)."""
    import werkzeug.security

    computed: list[str] = []
    original = werkzeug.security._hash_internal

    def counting(method: str, salt: str, password: str) -> tuple[str, str]:
        result = original(method, salt, password)
        computed.append(result[1])
        return result

    method = generate_password_hash("x").split("$")[0]
    staff = Staff(sapp)
    staff.sign_in("anna", "warm-up")  # the dummy hash may be made once per process
    staff.sign_in("nobody", "warm-up")
    monkeypatch.setattr(werkzeug.security, "_hash_internal", counting)
    for number, name in enumerate(("anna", "nobody", "ANNA ", "")):
        computed.clear()
        assert Staff(sapp, f"192.0.2.{number}").sign_in(name, "wrong").status_code == 401
        assert computed == [method], name


def test_sign_ins_are_audit_logged(sapp: t.Any) -> None:
    staff = Staff(sapp, "192.0.2.44")
    staff.sign_in("anna", "wrong")
    staff.sign_in("anna", PASSWORD)
    for _ in range(3):
        staff.sign_in("nobody 999911120", "wrong")  # a BSN typed as a name is not stored as such
    staff.sign_in("nobody 999911120", "wrong")  # throttled
    records = audit(sapp, "hospital.sign-in")
    assert [(r.outcome, r.actor, r.remote_addr) for r in records[:2]] == [
        ("failure", "staff:anna", "192.0.2.44"), ("success", "staff:anna", "192.0.2.44")]
    assert records[-1].outcome == "failure" and "throttled" in (records[-1].detail or "")
    assert all("999911120" not in r.actor for r in records)
    assert len(records) == 6


def test_signing_out_is_audit_logged(sapp: t.Any) -> None:
    staff = Staff(sapp)
    staff.sign_in("anna", PASSWORD)
    page = staff.client.get("/ziekenhuis/wachtrij").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and staff.client.post("/ziekenhuis/uitloggen", data={"csrf_token": token.group(1)}
                                       ).status_code == 303
    assert [r.actor for r in audit(sapp, "hospital.sign-out")] == ["staff:anna"]
