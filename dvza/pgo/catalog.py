"""Which aanbieders the simulator can talk to and what their gegevensdiensten are called.

In the MedMij network a PGO learns this from the Zorgaanbiederslijst (endpoints per aanbieder and
gegevensdienst) and the Gegevensdienstnamenlijst (names); medmij-protocol.md §2. The simulator
reads both through ``medmij_lists``; tests may give a fixed catalog.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field

from .client import Aanbieder


class Catalog(t.Protocol):
    def aanbieders(self) -> list[Aanbieder]: ...

    def dienst_name(self, dienst_id: str) -> str: ...


@dataclass(slots=True)
class StaticCatalog:
    entries: list[Aanbieder] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def aanbieders(self) -> list[Aanbieder]:
        return list(self.entries)

    def dienst_name(self, dienst_id: str) -> str:
        return self.names.get(dienst_id, f"Gegevensdienst {dienst_id}")


def find(catalog: Catalog, naam: str) -> Aanbieder | None:
    return next((a for a in catalog.aanbieders() if a.naam == naam), None)
