"""What the authorization server needs from the MedMij lists (medmij-protocol.md §2), as an
interface: the app implements it with ``medmij_lists`` (OCL, Whitelist, GNL); tests with a table."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from dataclasses import field


class Directory(t.Protocol):
    def client_name(self, client_id: str) -> str | None:
        """``OAuthclientOrganisatienaam`` of the OCL entry with this hostname, None if not listed."""
        ...

    def is_whitelisted(self, hostname: str) -> bool:
        """Whether the node hostname is on the current Whitelist."""
        ...

    def dienst_name(self, dienst_id: str) -> str | None:
        """The GNL ``Weergavenaam`` of a gegevensdienst."""
        ...


@dataclass(slots=True)
class StaticDirectory:
    """A fixed directory (tests, or a deployment without list access during set-up)."""

    clients: dict[str, str] = field(default_factory=dict)
    whitelist: set[str] = field(default_factory=set)
    diensten: dict[str, str] = field(default_factory=dict)

    def client_name(self, client_id: str) -> str | None:
        return self.clients.get(client_id.lower())

    def is_whitelisted(self, hostname: str) -> bool:
        return hostname.lower() in self.whitelist

    def dienst_name(self, dienst_id: str) -> str | None:
        return self.diensten.get(dienst_id)
