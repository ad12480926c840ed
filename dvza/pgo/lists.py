"""The simulator's catalog from MedMij lists, as a PGO reads them (medmij-protocol.md §2).

ZAL: the aanbieders, their gegevensdiensten and per gegevensdienst the authorization, token and
resource endpoints; GNL: the names of the gegevensdiensten. A ``demo-network.json`` next to the
lists (written by ``dvza lists demo``) adds the aanbieder's display name, which the ZAL does not
carry. Files are re-read when they change, so a new list version is picked up without a restart.
"""

from __future__ import annotations

import json
import threading
import typing as t
from pathlib import Path

from medmij_lists import ListKind
from medmij_lists import parse_file

from .client import Aanbieder


class ListsCatalog:
    """:class:`dvza.pgo.catalog.Catalog` over a folder with MedMij_*.xml files.

    ``development=True`` accepts the development network's lists (ports in the frontchannel URL,
    ``.localhost`` names), which are not MedMij-valid.
    """

    def __init__(self, folder: str | Path, *, development: bool = True) -> None:
        self.folder = Path(folder)
        self.development = development
        self._lock = threading.Lock()
        self._stamp: tuple[float, ...] | None = None
        self._aanbieders: list[Aanbieder] = []
        self._names: dict[str, str] = {}

    def _files(self) -> list[Path]:
        return [self.folder / ListKind.ZAL.file_name, self.folder / ListKind.GNL.file_name,
                self.folder / "demo-network.json"]

    def _load(self) -> None:
        stamp = tuple(p.stat().st_mtime if p.exists() else 0.0 for p in self._files())
        with self._lock:
            if stamp == self._stamp:
                return
            zal_path, gnl_path, extra_path = self._files()
            zal = parse_file(zal_path, development=self.development, expected_kind=ListKind.ZAL)
            gnl = parse_file(gnl_path, development=self.development, expected_kind=ListKind.GNL)
            display: dict[str, str] = {}
            if extra_path.exists():
                dvza = json.loads(extra_path.read_text(encoding="utf-8")).get("dvza", {})
                if dvza.get("aanbieder_naam") and dvza.get("aanbieder_weergavenaam"):
                    display[str(dvza["aanbieder_naam"])] = str(dvza["aanbieder_weergavenaam"])
            aanbieders = []
            for aanbieder in zal.zorgaanbieders:
                diensten = [d for d in (aanbieder.gegevensdienst(i) for i in aanbieder.gegevensdienst_ids) if d]
                usable = [d for d in diensten if d.authorization_endpoint and d.token_endpoint
                          and d.resource_endpoints]
                if not usable:
                    continue
                first = usable[0]
                aanbieders.append(Aanbieder(
                    naam=aanbieder.naam, weergavenaam=display.get(aanbieder.naam, aanbieder.naam),
                    authorize_url=t.cast(str, first.authorization_endpoint),
                    token_url=t.cast(str, first.token_endpoint), fhir_base=first.resource_endpoints[0],
                    diensten=tuple(d.id for d in usable)))
            self._aanbieders = aanbieders
            self._names = {g.id: g.weergavenaam for g in gnl.gegevensdiensten}
            self._stamp = stamp

    def aanbieders(self) -> list[Aanbieder]:
        self._load()
        return list(self._aanbieders)

    def dienst_name(self, dienst_id: str) -> str:
        self._load()
        return self._names.get(dienst_id, f"Gegevensdienst {dienst_id}")


def catalog_from_lists(folder: str | Path | None, *, development: bool = True) -> ListsCatalog:
    if not folder:
        raise ValueError("PGO_LISTS_DIR is not set: the simulator needs a ZAL and a GNL")
    return ListsCatalog(folder, development=development)
