"""The MedMij lists in the application: a :class:`medmij_lists.ListService` configured from
``DVZA_LISTS_*`` and offered to the authorization server as its :class:`oauth.directory.Directory`.

* OCL: is a ``client_id`` a PGO, and what is its ``OAuthclientOrganisatienaam`` (consent page);
  Whitelist: may this node talk to us (token endpoint); GNL: the ``Weergavenaam`` of each
  gegevensdienst (consent page, hospital page) — medmij-protocol.md §2, §4.3.
* Refresh: at start the cached copies are loaded and every list is fetched once; each worker
  process then refreshes in a background thread every ``LISTS_INTERVAL`` seconds (at most 900,
  MedMij §2.7). The thread is started on the first request of a worker, never in the gunicorn
  master, so forking cannot copy a held lock.
* ``/readyz`` reports each list's volgnummer, age and last error (:func:`readiness`).

Sources, in order: ``LISTS_DIR`` (a folder with the official file names, the development
network's lists) and ``LISTS_<ZAL|OCL|GNL|WHL>_URL`` (the Stelselnode, ``…/MedMij_<List>.xml``).
``LISTS_DEVELOPMENT`` accepts lists that are not MedMij-valid (ports in the frontchannel URL,
``.localhost`` names): development network only.
"""

from __future__ import annotations

import logging
import typing as t
from pathlib import Path

from flask import Flask

from medmij_lists import ListKind
from medmij_lists import ListService

log = logging.getLogger("dvza.lists")

KINDS = (ListKind.ZAL, ListKind.OCL, ListKind.GNL, ListKind.WHL)


class ListsDirectory:
    """The authorization server's view of the current lists (``oauth.directory.Directory``).

    With a list missing (never loaded) every question about it has the closed answer: no client,
    not whitelisted, no name.
    """

    def __init__(self, service: ListService, names: t.Mapping[str, str] | None = None) -> None:
        self.service = service
        #: fallback names for gegevensdiensten the GNL does not (yet) carry: configuration, never code
        self.names = dict(names or {})

    def client_name(self, client_id: str) -> str | None:
        ocl = self.service.ocl
        return ocl.organisatienaam(client_id) if ocl is not None else None

    def is_whitelisted(self, hostname: str) -> bool:
        whitelist = self.service.whitelist
        return whitelist.contains(hostname) if whitelist is not None else False

    def dienst_name(self, dienst_id: str) -> str | None:
        gnl = self.service.gnl
        name = gnl.weergavenaam(dienst_id) if gnl is not None else None
        return name or self.names.get(str(dienst_id))


class NoListsDirectory:
    """The directory when no list source is configured: every question has the closed answer.

    Loading the app without lists is normal for CLI commands, ``make conformance`` (qualification
    tokens), ``make bench`` and the parent process of ``make run``, so nothing is said at start-up;
    the first authorization request refused for want of an OCL says why in the log, once per process.
    ``dvza serve`` warns at start (:func:`not_configured_warning`).
    """

    def __init__(self) -> None:
        self.warned = False

    def _refusing(self) -> None:
        if not self.warned:
            self.warned = True
            log.warning(NOT_CONFIGURED + ": this authorization request is refused (the PGO is on no OCL)",
                        extra={"list_event": "not_configured"})

    def client_name(self, client_id: str) -> str | None:
        self._refusing()
        return None

    def is_whitelisted(self, hostname: str) -> bool:
        self._refusing()
        return False

    def dienst_name(self, dienst_id: str) -> str | None:
        return None


NOT_CONFIGURED = "no MedMij lists configured (DVZA_LISTS_DIR or DVZA_LISTS_<LIST>_URL)"


def not_configured_warning(config: t.Mapping[str, t.Any]) -> str | None:
    """What ``dvza serve`` says at start when authorization requests cannot work, or None."""
    if urls_from_config(config) or config.get("QUALIFICATION_MODE"):
        return None
    return NOT_CONFIGURED + ": every authorization request will be refused"


def urls_from_config(config: t.Mapping[str, t.Any]) -> dict[ListKind, str]:
    urls: dict[ListKind, str] = {}
    if config.get("LISTS_DIR"):
        folder = Path(config["LISTS_DIR"])
        urls.update({kind: str(folder / kind.file_name) for kind in KINDS})
    for kind in KINDS:
        url = config.get(f"LISTS_{kind.name}_URL")
        if url:
            urls[kind] = str(url)
    return urls


def service_from_config(config: t.Mapping[str, t.Any], instance_path: str) -> ListService | None:
    """A ListService for the configured sources, or None when no list source is configured."""
    urls = urls_from_config(config)
    if not urls:
        return None
    cache_dir = config.get("LISTS_CACHE_DIR") or str(Path(instance_path) / "lists-cache")
    return ListService(urls, cache_dir=cache_dir, client_cert=config.get("LISTS_CLIENT_CERT"),
                       client_key=config.get("LISTS_CLIENT_KEY"), ca_bundle=config.get("LISTS_CA_BUNDLE"),
                       interval=float(config.get("LISTS_INTERVAL") or 900),
                       development=bool(config.get("LISTS_DEVELOPMENT")))


def init_app(app: Flask) -> None:
    """Load the lists (cache, then one fetch) and install the directory before ``oauth`` needs it."""
    service = service_from_config(app.config, app.instance_path)
    app.extensions["dvza.lists"] = service
    if service is None:
        log.debug(NOT_CONFIGURED, extra={"list_event": "not_configured"})
        return
    service.load_cache()
    service.refresh()
    app.extensions["dvza.directory"] = ListsDirectory(service, app.config.get("GEGEVENSDIENST_NAMES"))
    if app.config.get("LISTS_BACKGROUND_REFRESH", True):
        @app.before_request
        def _keep_lists_fresh() -> None:
            if not service.running:
                service.start()


def readiness(app: Flask) -> dict[str, t.Any]:
    """The ``lists`` check of ``/readyz``: every configured list loaded and not stale.

    Without configured lists the DVZA can still serve FHIR with qualification tokens, so that is
    ready only in qualification mode.
    """
    service: ListService | None = app.extensions.get("dvza.lists")
    if service is None:
        ok = bool(app.config.get("QUALIFICATION_MODE")) or "dvza.directory" in app.extensions
        return {"ok": ok, "configured": False}
    lists = service.status_dict()
    ok = all(entry["volgnummer"] is not None and not entry["stale"] for entry in lists.values())
    return {"ok": ok, "configured": True, "lists": lists}
