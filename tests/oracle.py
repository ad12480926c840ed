"""An independent oracle of what a patient may see, for the isolation tests.

Written without the server's compartment and reachability code: plain recursion over the stored JSON
for ``reference`` strings (and attachment URLs), breadth-first from the patient's own resources
through shared resources; a document (Binary) only when the patient's own resources point at it
directly and no other patient's do.
"""

from __future__ import annotations

import json
import typing as t

from sqlalchemy import select


def _references(node: t.Any) -> t.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif key == "url" and isinstance(value, str) and value.startswith("Binary/"):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _key(reference: str) -> tuple[str, str] | None:
    parts = reference.split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 2 and parts[-2][:1].isupper() else None


class Oracle:
    def __init__(self, resources: dict[tuple[str, str], dict[str, t.Any]]):
        self.resources = resources
        self.patients_of = {
            key: {k[1] for k in map(_key, _references(r)) if k and k[0] == "Patient"}
            for key, r in resources.items()
        }

    def owner(self, key: tuple[str, str]) -> str | None:
        if key[0] == "Patient":
            return key[1]
        patients = self.patients_of[key]
        return next(iter(patients)) if len(patients) == 1 else (None if not patients else "?")

    def visible(self, patient: str) -> set[tuple[str, str]]:
        """The patient's own resources, the shared resources reachable from them through shared
        resources, and the documents (Binary) only the patient's own resources point at directly."""
        own = {k for k in self.resources if self.owner(k) == patient}
        seen = set(own)
        frontier = list(own)
        while frontier:
            key = frontier.pop()
            for target in map(_key, _references(self.resources[key])):
                if target in self.resources and target not in seen and self.owner(target) is None \
                        and target[0] != "Binary":
                    seen.add(target)
                    frontier.append(target)
        for key in own:
            for target in map(_key, _references(self.resources[key])):
                if target in self.resources and target[0] == "Binary" and self.claimants(target) == {patient}:
                    seen.add(target)
        return seen

    def claimants(self, key: tuple[str, str]) -> set[str | None]:
        """The owners of every patient resource that refers to ``key``."""
        return {self.owner(k) for k, r in self.resources.items() if self.owner(k) is not None
                and key in map(_key, _references(r))}


def oracle_of(app: t.Any) -> Oracle:
    """The oracle over everything stored and visible (accepted) in ``app``'s database."""
    from fhir_api.models import ResourceRow

    with app.extensions["dvza.db"].sessionmaker() as session:
        rows = session.execute(select(ResourceRow.resource_type, ResourceRow.logical_id, ResourceRow.json_text)
                               .where(ResourceRow.hidden_by.is_(None)))
        return Oracle({(r[0], r[1]): json.loads(r[2]) for r in rows})
