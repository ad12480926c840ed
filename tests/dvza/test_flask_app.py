"""dvza.flask_app: Flask's ``ensure_sync`` answered once per function, with Flask's answers."""

from __future__ import annotations

import typing as t

import flask
import pytest

from dvza.flask_app import DvzaFlask


def test_each_function_is_asked_once_and_gets_flasks_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    app = DvzaFlask(__name__)
    asked: list[t.Any] = []
    original = flask.Flask.ensure_sync

    def counting(self: flask.Flask, func: t.Any) -> t.Any:
        asked.append(func)
        return original(self, func)

    monkeypatch.setattr(flask.Flask, "ensure_sync", counting)

    def view() -> str:
        return "ok"

    async def coroutine_view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view and app.ensure_sync(view) is view
    assert asked == [view]
    try:
        import asgiref  # noqa: F401 - Flask's async extra
    except ImportError:  # Flask's own refusal, each time (a refusal is not kept)
        for _ in range(2):
            with pytest.raises(RuntimeError, match="async"):
                app.ensure_sync(coroutine_view)
    else:  # wrapped to run in the worker, and the wrapper kept
        wrapped = app.ensure_sync(coroutine_view)
        assert wrapped is not coroutine_view and app.ensure_sync(coroutine_view) is wrapped


def test_unhashable_callables_are_asked_each_time() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    app = DvzaFlask(__name__)
    handler = Unhashable()
    assert app.ensure_sync(handler) is handler and app.ensure_sync(handler) is handler


def test_the_app_is_a_dvza_flask_and_its_hooks_run(client: t.Any) -> None:
    assert isinstance(client.application, DvzaFlask)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # an after_request hook ran


def test_a_function_made_per_request_is_not_kept() -> None:
    import gc

    app = DvzaFlask(__name__)

    def made_now() -> str:
        return "ok"

    assert app.ensure_sync(made_now) is made_now
    assert len(app._plain) == 1
    del made_now
    gc.collect()
    assert len(app._plain) == 0
