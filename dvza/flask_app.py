"""The DVZA's Flask class: Flask, with one per-request cost taken out (issue 12).

Flask passes every view and every ``before_request``/``after_request``/teardown hook through
:meth:`flask.Flask.ensure_sync` on every request, which asks :func:`inspect.iscoroutinefunction` each
time. The DVZA has about a dozen such functions per FHIR read, and whether a function is a coroutine
function does not change, so the answer is kept per function. Measured in-process on the 28 BgZ
searches (alternating A/B, CPU time): about 4 % of a search.
"""

from __future__ import annotations

import typing as t
import weakref

from flask import Flask


class DvzaFlask(Flask):
    def __init__(self, *args: t.Any, **kwargs: t.Any):
        super().__init__(*args, **kwargs)
        #: function → "is a plain (not a coroutine) function", held weakly: a function made per request (a
        #: closure for ``after_this_request``) leaves with its request
        self._plain: weakref.WeakKeyDictionary[t.Callable[..., t.Any], bool] = weakref.WeakKeyDictionary()

    def ensure_sync(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """Flask's ``ensure_sync`` (a coroutine function wrapped to run in a WSGI worker, any other function as
        it is), with the check made once per function."""
        try:
            if self._plain[func]:
                return func
        except (KeyError, TypeError):  # not seen yet, or not weakly referable (a bound method, a builtin)
            pass
        found = super().ensure_sync(func)
        try:
            self._plain[func] = found is func
        except TypeError:
            pass
        return found
