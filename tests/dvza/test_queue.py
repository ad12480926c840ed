"""The return queue as the hospital uses it: JSON API with API keys, CLI, leases, and consumers that
never claim the same item (FOR UPDATE SKIP LOCKED on PostgreSQL)."""

from __future__ import annotations

import threading
import typing as t
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from dvza.models import AuditRecord
from dvza.returnqueue.api import hash_key
from fhir_api.services import Submission
from tests.support import make_app

KEY = "test-consumer-key-1"


def enqueue(app: t.Any, n: int, patient: str = "qp-1") -> list[str]:
    queue = app.extensions["dvza.queue"]
    ids = []
    with app.extensions["dvza.db"].sessionmaker() as session:
        for i in range(n):
            item_id = str(uuid.uuid4())
            queue.enqueue(session, Submission(
                id=item_id, kind="vitalsigns", gegevensdienst="53", patient_id=patient, client_id="pgo.test",
                request_id=f"r-{item_id}", correlation_id=None, body_sha256="0" * 64, resources=[],
                summary=f"item {i}", response={"resourceType": "Bundle", "type": "batch-response"}))
            ids.append(item_id)
        session.commit()
    return ids


@pytest.fixture()
def qapp(databases: t.Any, tmp_path_factory: t.Any) -> t.Iterator[t.Any]:
    app = make_app(databases, tmp_path_factory, QUEUE_API_KEYS={"epd": hash_key(KEY), "other": hash_key("k2")})
    yield app
    app.extensions["dvza.db"].dispose()


def api(client: t.Any, method: str, path: str, key: str = KEY, **kwargs: t.Any) -> t.Any:
    return getattr(client, method)(f"/queue/api{path}", headers={"Authorization": f"Bearer {key}"}, **kwargs)


def test_api_needs_a_valid_key(qapp: t.Any) -> None:
    client = qapp.test_client()
    assert client.get("/queue/api/items").status_code == 401
    assert api(client, "get", "/items", key="wrong").status_code == 401
    assert api(client, "get", "/items").status_code == 200


def test_claim_accept_reject_over_the_api(qapp: t.Any) -> None:
    client = qapp.test_client()
    first, second, third = enqueue(qapp, 3)
    listed = api(client, "get", "/items?status=new").get_json()
    assert listed["counts"]["new"] == 3 and len(listed["items"]) == 3
    claimed = api(client, "post", "/claim", json={"max": 2}).get_json()["items"]
    assert [i["id"] for i in claimed] == [first, second]
    assert all(i["status"] == "claimed" and i["claimed_by"] == "epd" for i in claimed)
    assert [i["id"] for i in api(client, "post", "/claim", key="k2", json={"max": 5}).get_json()["items"]] == [third]
    assert api(client, "post", f"/items/{third}/accept").status_code == 409  # claimed by "other"
    assert api(client, "post", f"/items/{first}/accept").get_json()["item"]["status"] == "accepted"
    assert api(client, "post", f"/items/{second}/reject", json={}).status_code == 400
    rejected = api(client, "post", f"/items/{second}/reject", json={"reason": "dubbel"}).get_json()["item"]
    assert rejected["status"] == "rejected" and rejected["reason"] == "dubbel"
    assert api(client, "post", f"/items/{first}/reject", json={"reason": "x"}).status_code == 409
    assert api(client, "get", "/items/nope").status_code == 404
    shown = api(client, "get", f"/items/{first}").get_json()
    assert shown["item"]["decided_by"] == "epd" and shown["resources"] == []
    with qapp.extensions["dvza.db"].sessionmaker() as session:
        events = [r.event_type for r in session.scalars(select(AuditRecord).where(AuditRecord.actor == "staff:epd"))]
    assert {"queue.claim", "queue.accepted", "queue.rejected"} <= set(events)


def test_expired_claims_come_back(qapp: t.Any) -> None:
    queue = qapp.extensions["dvza.queue"]
    [item_id] = enqueue(qapp, 1)
    assert [i.id for i in queue.claim("a", lease_seconds=60)] == [item_id]
    assert queue.claim("b") == []
    real_now = queue.now
    queue.now = lambda: real_now() + timedelta(seconds=61)
    try:
        assert [i.id for i in queue.claim("b")] == [item_id]
        with pytest.raises(Exception, match="claimed by b"):
            queue.accept(item_id, "a")
        assert queue.accept(item_id, "b").status == "accepted"
    finally:
        queue.now = real_now


def test_release(qapp: t.Any) -> None:
    queue = qapp.extensions["dvza.queue"]
    [item_id] = enqueue(qapp, 1)
    queue.claim("a")
    assert queue.release(item_id, "a").status == "new"
    assert [i.id for i in queue.claim("b")] == [item_id]


def test_concurrent_consumers_never_claim_the_same_item(qapp: t.Any) -> None:
    """Several threads, each its own connection, claim in small batches until the queue is empty."""
    queue = qapp.extensions["dvza.queue"]
    ids = set(enqueue(qapp, 60))
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def consume(name: str) -> None:
        mine: list[str] = []
        try:
            barrier.wait()
            while True:
                got = queue.claim(name, max_items=3, lease_seconds=600)
                if not got:
                    break
                mine += [i.id for i in got]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        claimed[name] = mine

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    everything = [item for items in claimed.values() for item in items]
    assert len(everything) == len(set(everything)) == len(ids)
    assert set(everything) == ids


def test_cli(qapp: t.Any) -> None:
    runner = qapp.test_cli_runner()
    [item_id] = enqueue(qapp, 1)
    assert "new: 1" in runner.invoke(args=["queue", "list"]).output
    assert item_id in runner.invoke(args=["queue", "claim", "--consumer", "cli"]).output
    result = runner.invoke(args=["queue", "reject", item_id, "--consumer", "cli", "--reason", "test"])
    assert result.exit_code == 0 and "rejected" in result.output
    assert runner.invoke(args=["queue", "accept", item_id, "--consumer", "cli"]).exit_code == 1
    key = runner.invoke(args=["queue", "apikey", "epd-koppeling"]).output
    assert "DVZA_QUEUE_API_KEYS" in key and "epd-koppeling" in key


def test_received_at_is_timezone_aware(qapp: t.Any) -> None:
    enqueue(qapp, 1)
    [item] = qapp.extensions["dvza.queue"].list()
    assert datetime.fromisoformat(item.received_at).tzinfo is not None
    assert datetime.fromisoformat(item.received_at) <= datetime.now(UTC)
