"""The DVZA's Flask class: Flask, with one per-request cost taken out (issue 12).

Flask passes every view and every ``before_request``/``after_request``/teardown hook through
:meth:`flask.Flask.ensure_sync` on every request, which asks :func:`inspect.iscoroutinefunction` each
time. The DVZA has about a dozen such functions per FHIR read, and whether a function is a coroutine
function does not change, so the answer is kept per function. Measured in-process on the 28 BgZ
searches (alternating A/B, CPU time): about 4 % of a search.
"""

from __future__ import annotations

import typing as t

from flask import Flask

#: no more functions than this are kept (hooks and views are a few dozen; this only bounds the unforeseen)
MAX_KEPT = 4096


class DvzaFlask(Flask):
    def __init__(self, *args: t.Any, **kwargs: t.Any):
        super().__init__(*args, **kwargs)
        self._sync: dict[t.Callable[..., t.Any], t.Callable[..., t.Any]] = {}

    def ensure_sync(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """Flask's ``ensure_sync`` (a coroutine function wrapped to run in a WSGI worker, any other function as
        it is), answered once per function."""
        try:
            return self._sync[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: asked each time, as Flask does
            return super().ensure_sync(func)
        found = super().ensure_sync(func)
        if len(self._sync) < MAX_KEPT:
            self._sync[func] = found
        return found
