"""The hospital's JSON API on the return queue (``/queue/api``), for the EHR integration.

Authentication: ``Authorization: Bearer <api key>``; the configuration holds only SHA-256 hashes
of the keys (``QUEUE_API_KEYS = {"<consumer name>": "<sha256 hex>"}``; ``dvza queue apikey NAME``
makes one). The consumer name is what claims and decisions are recorded under.

    GET  /queue/api/items?status=new&patient=<id>&limit=50   list
    GET  /queue/api/items/<id>                               one item with its FHIR resources
    POST /queue/api/claim        {"max": 10, "lease_seconds": 300}
    POST /queue/api/items/<id>/accept
    POST /queue/api/items/<id>/reject   {"reason": "..."}
    POST /queue/api/items/<id>/release
"""

from __future__ import annotations

import hashlib
import hmac
import typing as t

from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException

from .queue import STATUSES
from .queue import QueueError
from .queue import ReturnQueue

bp = Blueprint("queue_api", __name__, url_prefix="/queue/api")


def queue() -> ReturnQueue:
    return t.cast(ReturnQueue, current_app.extensions["dvza.queue"])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def consumer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise QueueError("an API key is required (Authorization: Bearer <key>)", 401)
    digest = hash_key(key.strip())
    for name, expected in (current_app.config.get("QUEUE_API_KEYS") or {}).items():
        if hmac.compare_digest(str(expected), digest):
            return str(name)
    raise QueueError("unknown API key", 401)


def _integer(value: t.Any, name: str, low: int, high: int) -> int:
    """A whole number in ``[low, high]`` from a query string or JSON body; 400 otherwise."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.isascii() and value.strip().isdigit() and len(value.strip()) <= 9:
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise QueueError(f"{name} must be a whole number from {low} to {high}", 400)
    return value


def _json_object() -> dict[str, t.Any]:
    """The JSON object body of a POST (an empty body counts as ``{}``); 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise QueueError("the body must be a JSON object", 400)
    return body


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> t.Any:
    """Werkzeug's errors (413 over the body limit, 405, …) in the API's JSON form."""
    return _error(QueueError(error.description or error.name, error.code or 400))


@bp.errorhandler(QueueError)
def _error(error: QueueError) -> t.Any:
    response = jsonify(error=str(error))
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dvza-queue"'
    return response


@bp.get("/items")
def list_items() -> t.Any:
    consumer()
    status = request.args.get("status")
    if status and status not in STATUSES:
        raise QueueError(f"status must be one of {', '.join(STATUSES)}", 400)
    limit = _integer(request.args.get("limit", "50"), "limit", 1, 500)
    items = queue().list(status=status, patient_id=request.args.get("patient"), limit=limit)
    return jsonify(items=[i.to_json() for i in items], counts=queue().counts())


@bp.get("/items/<item_id>")
def show_item(item_id: str) -> t.Any:
    name = consumer()
    item, resources = queue().get(item_id, actor=f"staff:{name}")
    return jsonify(item=item.to_json(), resources=resources)


@bp.post("/claim")
def claim() -> t.Any:
    name = consumer()
    body = _json_object()
    max_items = _integer(body.get("max", 10), "max", 1, 500)
    lease = _integer(body.get("lease_seconds", 300), "lease_seconds", 10, 86400)
    return jsonify(items=[i.to_json() for i in queue().claim(name, max_items=max_items, lease_seconds=lease)])


@bp.post("/items/<item_id>/accept")
def accept(item_id: str) -> t.Any:
    return jsonify(item=queue().accept(item_id, consumer()).to_json())


@bp.post("/items/<item_id>/reject")
def reject(item_id: str) -> t.Any:
    name = consumer()
    reason = _json_object().get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise QueueError("reason must be a text of at most 2000 characters", 400)
    return jsonify(item=queue().reject(item_id, name, reason).to_json())


@bp.post("/items/<item_id>/release")
def release(item_id: str) -> t.Any:
    return jsonify(item=queue().release(item_id, consumer()).to_json())


def init_app(app: Flask, return_queue: ReturnQueue) -> None:
    app.extensions["dvza.queue"] = return_queue
    app.register_blueprint(bp)
