"""The MedMij ``scope`` of an authorization request, in both dialects (medmij-protocol.md §3.2).

* R1.x: ``<naam>~<GegevensdienstId>``, several space-separated for Verzamelen (one aanbieder),
  exactly one for Delen. ``<naam>`` is the Zorgaanbiedernaam without ``@medmij``.
* R2.x: Verzamelen is only ``<naam>`` ("een enkelvoudige scope … enkel de MedMij-naam van de
  Aanbieder") and covers every Verzamelen gegevensdienst of this aanbieder at this DVA; Delen stays
  ``<naam>~<id>``.

Vertegenwoordiging (``onbehalfof``/``onbehalfofchild``) and Abonneren (``subscribe~N/…``) are
extensions this server does not offer; they are refused as ``invalid_scope``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidScopeError

DIALECTS = ("r1", "r2", "both")


@dataclass(frozen=True, slots=True)
class RequestedScope:
    usecase: str  # verzamelen | delen
    diensten: frozenset[str]


def aanbieder_short(naam: str) -> str:
    return naam[: -len("@medmij")] if naam.endswith("@medmij") else naam


def parse_scope(scope: str | None, *, aanbieder: str, verzamelen: frozenset[str], delen: frozenset[str],
                dialect: str = "both") -> RequestedScope:
    """Interpret ``scope`` for this aanbieder; raise ``InvalidScopeError`` when it asks for anything
    this DVA does not offer or is not in the configured dialect."""
    short = aanbieder_short(aanbieder)
    parts = (scope or "").split()
    if not parts:
        raise InvalidScopeError("scope is missing")
    if any(p in ("onbehalfof", "onbehalfofchild") for p in parts):
        raise InvalidScopeError("Vertegenwoordiging is not offered by this server")
    if any(p.startswith("subscribe~") for p in parts):
        raise InvalidScopeError("Abonneren is not offered by this server")
    if parts == [short]:
        if dialect == "r1":
            raise InvalidScopeError("scope must name gegevensdiensten as <aanbieder>~<id>")
        if not verzamelen:
            raise InvalidScopeError("this aanbieder offers no Verzamelen gegevensdiensten")
        return RequestedScope("verzamelen", verzamelen)
    ids = []
    for part in parts:
        naam, sep, dienst = part.partition("~")
        if not sep or not dienst:
            raise InvalidScopeError(f"scope part {part!r} is not <aanbieder>~<gegevensdienst>")
        if naam != short:
            raise InvalidScopeError(f"scope names aanbieder {naam!r}; this server is {short!r}")
        ids.append(dienst)
    unknown = [i for i in ids if i not in verzamelen | delen]
    if unknown:
        raise InvalidScopeError(f"gegevensdienst {unknown[0]} is not offered by {short}")
    if all(i in delen for i in ids):
        if len(ids) != 1:
            raise InvalidScopeError("Delen takes exactly one gegevensdienst")
        return RequestedScope("delen", frozenset(ids))
    if any(i in delen for i in ids):
        raise InvalidScopeError("Verzamelen and Delen cannot be asked for together")
    if dialect == "r2":
        raise InvalidScopeError(f"for Verzamelen the scope is only the aanbieder name: {short!r}")
    return RequestedScope("verzamelen", frozenset(ids))
