"""Fetching, validating, caching and refreshing the MedMij lists (protocol doc §2.7).

Rules and recommendations implemented here:

* refresh at least every 900 seconds ("minstens elke vijftien minuten (900 seconden)", R1.0, Whitelist; §2.7
  recommends the same cadence for all four lists) — ``interval`` may not exceed 900;
* validate every new version against the XSD before use (§2.7) — :func:`medmij_lists.parser.parse_list`;
* keep the last good version on any failure: network, HTTP status, content type other than XML (as the GIDS PHP
  client asserts), schema, empty list (§2.6/§2.7);
* refuse a Volgnummer lower than the cached one (rollback; the Volgnummer rises by one per publication, §2.2);
  an equal Volgnummer means "unchanged";
* persist the raw bytes of every accepted version (atomically) so a restart works without the Stelselnode;
* report staleness (age > 2 × interval, or never loaded) so operators can alert (§2.7).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests

from medmij_lists.errors import ListError
from medmij_lists.errors import ListFetchError
from medmij_lists.errors import ListRollbackError
from medmij_lists.models import GegevensdienstNamenLijst
from medmij_lists.models import ListKind
from medmij_lists.models import MedMijList
from medmij_lists.models import OAuthClientList
from medmij_lists.models import Whitelist
from medmij_lists.models import Zorgaanbiederslijst
from medmij_lists.parser import MAX_LIST_BYTES
from medmij_lists.parser import parse_list

log = logging.getLogger("medmij_lists")

#: The maximum refresh interval: the Whitelist must be fetched at least every 900 s (§2.7).
MAX_INTERVAL = 900.0
XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})
ENV_PREFIX = "DVZA_LISTS_"
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class ListStatus:
    """Health of one list in a :class:`ListService`.

    ``fetched_at`` is when the current version was last confirmed from its source (or the cache file's time after
    :meth:`ListService.load_cache`); ``stale`` is True when that is longer ago than twice the refresh interval, or
    when no version was ever loaded.
    """

    kind: ListKind
    url: str | None
    volgnummer: int | None
    tijdstempel: datetime | None
    fetched_at: datetime | None
    age_seconds: float | None
    last_error: str | None
    last_error_at: datetime | None
    stale: bool

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "kind": self.kind.value,
            "url": self.url,
            "volgnummer": self.volgnummer,
            "tijdstempel": self.tijdstempel.isoformat() if self.tijdstempel else None,
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "stale": self.stale,
        }


@dataclass
class _Entry:
    parsed: MedMijList | None = None
    raw: bytes | None = None
    fetched_at: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


def _stamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class ListService:
    """Keeps the current, validated version of each configured MedMij list.

    ``urls`` maps a :class:`ListKind` to an ``https://`` URL (e.g. ``https://stelselnode.medmij.nl/
    MedMij_Whitelist.xml?api=2``, §2.7), a ``file://`` URL or a plain path (local files, used by the development
    network). ``client_cert``/``client_key`` are the PKIoverheid client certificate for mutual TLS, ``ca_bundle`` the
    trust store for the Stelselnode. ``development=True`` is *not MedMij-valid and for the development network
    only*: lists may carry a port in frontchannel URLs and ``.localhost``/``.test`` hostnames, and plain ``http://``
    list URLs are allowed. ``session`` injects a :class:`requests.Session` (tests, proxies); ``clock`` a time source.
    """

    def __init__(
        self,
        urls: Mapping[ListKind | str, str],
        *,
        cache_dir: str | os.PathLike[str] | None,
        client_cert: str | None = None,
        client_key: str | None = None,
        ca_bundle: str | None = None,
        interval: float = MAX_INTERVAL,
        timeout: float = 10,
        development: bool = False,
        session: requests.Session | None = None,
        max_bytes: int = MAX_LIST_BYTES,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        if not 0 < interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be > 0 and at most {MAX_INTERVAL:g} seconds (MedMij, §2.7)")
        if client_key and not client_cert:
            raise ValueError("client_key given without client_cert")
        self.urls: dict[ListKind, str] = {ListKind(k): str(v) for k, v in urls.items()}
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.client_cert = client_cert
        self.client_key = client_key
        self.ca_bundle = ca_bundle
        self.interval = float(interval)
        self.timeout = timeout
        self.development = development
        self.max_bytes = max_bytes
        self._session = session
        self._clock = clock
        self._lock = threading.Lock()  # guards _entries swaps and reads
        self._refresh_lock = threading.Lock()  # one refresh at a time (background thread vs. manual)
        self._entries: dict[ListKind, _Entry] = {kind: _Entry() for kind in self.urls}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------------------------
    # Construction from the environment

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: t.Any) -> ListService:
        """Build from ``DVZA_LISTS_{ZAL,OCL,GNL,WHL,ZAKL}_URL``, ``DVZA_LISTS_CACHE_DIR``, ``DVZA_LISTS_CLIENT_CERT``,
        ``DVZA_LISTS_CLIENT_KEY``, ``DVZA_LISTS_CA_BUNDLE``, ``DVZA_LISTS_INTERVAL``, ``DVZA_LISTS_TIMEOUT`` and
        ``DVZA_LISTS_DEVELOPMENT`` (1/true/yes/on; not MedMij-valid, development network only).
        Kinds without a URL are not managed. Keyword ``overrides`` win over the environment.
        """

        def get(name: str) -> str | None:
            value = environ.get(ENV_PREFIX + name, "").strip()
            return value or None

        urls = {kind: url for kind in ListKind if (url := get(f"{kind.value}_URL"))}
        kwargs: dict[str, t.Any] = {
            "cache_dir": get("CACHE_DIR"),
            "client_cert": get("CLIENT_CERT"),
            "client_key": get("CLIENT_KEY"),
            "ca_bundle": get("CA_BUNDLE"),
            "development": (get("DEVELOPMENT") or "").lower() in _TRUE,
        }
        for name, key in (("INTERVAL", "interval"), ("TIMEOUT", "timeout")):
            raw = get(name)
            if raw is not None:
                try:
                    kwargs[key] = float(raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{name} must be a number of seconds, not {raw!r}") from None
        kwargs.update(overrides)
        return cls(urls, **kwargs)

    # ----------------------------------------------------------------------------------------------------------
    # Reading

    def current(self, kind: ListKind | str) -> MedMijList | None:
        """The current validated list of this kind, or None when none was ever loaded."""
        entry = self._entries.get(ListKind(kind))
        if entry is None:
            return None
        with self._lock:
            return entry.parsed

    def require(self, kind: ListKind | str) -> MedMijList:
        """Like :meth:`current`, but raise :class:`ListError` when the list is not available."""
        found = self.current(kind)
        if found is None:
            raise ListError(f"the {ListKind(kind).title} is not loaded")
        return found

    @property
    def zal(self) -> Zorgaanbiederslijst | None:
        return t.cast(Zorgaanbiederslijst | None, self.current(ListKind.ZAL))

    @property
    def ocl(self) -> OAuthClientList | None:
        return t.cast(OAuthClientList | None, self.current(ListKind.OCL))

    @property
    def gnl(self) -> GegevensdienstNamenLijst | None:
        return t.cast(GegevensdienstNamenLijst | None, self.current(ListKind.GNL))

    @property
    def whitelist(self) -> Whitelist | None:
        return t.cast(Whitelist | None, self.current(ListKind.WHL))

    def status(self) -> dict[ListKind, ListStatus]:
        """Per configured list: volgnummer, age, last error and staleness (age > 2 × interval or never loaded)."""
        now = self._clock()
        result: dict[ListKind, ListStatus] = {}
        with self._lock:
            for kind, entry in self._entries.items():
                age = None if entry.fetched_at is None else max(0.0, now - entry.fetched_at)
                result[kind] = ListStatus(
                    kind=kind,
                    url=self.urls.get(kind),
                    volgnummer=entry.parsed.volgnummer if entry.parsed else None,
                    tijdstempel=entry.parsed.tijdstempel if entry.parsed else None,
                    fetched_at=_stamp(entry.fetched_at),
                    age_seconds=age,
                    last_error=entry.last_error,
                    last_error_at=_stamp(entry.last_error_at),
                    stale=entry.parsed is None or age is None or age > 2 * self.interval,
                )
        return result

    def status_dict(self) -> dict[str, dict[str, t.Any]]:
        """:meth:`status` as plain JSON-ready data, keyed by kind name."""
        return {kind.value: s.as_dict() for kind, s in self.status().items()}

    # ----------------------------------------------------------------------------------------------------------
    # Refreshing

    def refresh(self, kinds: t.Iterable[ListKind] | None = None) -> dict[ListKind, ListStatus]:
        """Fetch every configured list (or only ``kinds``); each list independently keeps its last good version."""
        wanted = list(self.urls) if kinds is None else [ListKind(k) for k in kinds]
        with self._refresh_lock:
            for kind in wanted:
                if kind in self.urls:
                    self._refresh_one(kind, self.urls[kind])
        return self.status()

    def refresh_if_due(self) -> bool:
        """Refresh the lists whose last attempt is at least ``interval`` seconds ago; True if any was attempted."""
        now = self._clock()
        with self._lock:
            due = [
                k for k, e in self._entries.items() if e.last_attempt is None or now - e.last_attempt >= self.interval
            ]
        if due:
            self.refresh(due)
        return bool(due)

    def _refresh_one(self, kind: ListKind, url: str) -> None:
        now = self._clock()
        entry = self._entries[kind]
        with self._lock:
            entry.last_attempt = now
            previous = entry.parsed
        extra: dict[str, t.Any] = {"medmij_list": kind.value, "list_url": url}
        try:
            raw = self._fetch(url)
            parsed = parse_list(raw, development=self.development, expected_kind=kind, max_bytes=self.max_bytes)
            if previous is not None and parsed.volgnummer < previous.volgnummer:
                raise ListRollbackError(
                    f"Volgnummer {parsed.volgnummer} is lower than the cached {previous.volgnummer}; "
                    "refusing a rollback (§2.2, §2.7)",
                    kind=kind.value,
                )
            if previous is not None and parsed.volgnummer == previous.volgnummer:
                with self._lock:
                    entry.fetched_at = now
                    entry.last_error = None
                    same = entry.raw == raw
                if not same:
                    log.warning(
                        "MedMij %s: same Volgnummer %s with different content; keeping the cached version",
                        kind.value,
                        parsed.volgnummer,
                        extra={**extra, "volgnummer": parsed.volgnummer, "list_event": "unchanged_differs"},
                    )
                else:
                    log.debug(
                        "MedMij %s unchanged (Volgnummer %s)",
                        kind.value,
                        parsed.volgnummer,
                        extra={**extra, "volgnummer": parsed.volgnummer, "list_event": "unchanged"},
                    )
                return
        except Exception as exc:  # any failure keeps the last good version (§2.7)
            reason = str(exc) if isinstance(exc, ListError) else f"unexpected error: {exc!r}"
            with self._lock:
                entry.last_error = reason
                entry.last_error_at = now
            log.warning(
                "MedMij %s refresh failed, keeping Volgnummer %s: %s",
                kind.value,
                previous.volgnummer if previous else None,
                reason,
                extra={
                    **extra,
                    "list_event": "refresh_failed",
                    "error": reason,
                    "error_type": type(exc).__name__,
                    "volgnummer": previous.volgnummer if previous else None,
                },
                exc_info=not isinstance(exc, ListError),
            )
            return

        cache_error = self._write_cache(kind, raw)
        with self._lock:
            entry.parsed = parsed
            entry.raw = raw
            entry.fetched_at = now
            entry.last_error = cache_error
            entry.last_error_at = now if cache_error else entry.last_error_at
        log.info(
            "MedMij %s updated to Volgnummer %s",
            kind.value,
            parsed.volgnummer,
            extra={
                **extra,
                "list_event": "updated",
                "volgnummer": parsed.volgnummer,
                "previous_volgnummer": previous.volgnummer if previous else None,
                "entries": len(parsed),
            },
        )

    # ----------------------------------------------------------------------------------------------------------
    # Fetching

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def _fetch(self, url: str) -> bytes:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if scheme == "http" and not self.development:
                raise ListFetchError(f"refusing plain http for {url}: the lists are fetched over TLS (§2.7)")
            return self._fetch_http(url)
        if scheme == "file":
            return self._read_file(url2pathname(parts.path))
        if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
            return self._read_file(url)
        raise ListFetchError(f"unsupported list URL scheme {scheme!r} in {url}")

    def _fetch_http(self, url: str) -> bytes:
        kwargs: dict[str, t.Any] = {
            "timeout": self.timeout,
            "stream": True,
            "headers": {"Accept": "application/xml, text/xml"},
            "verify": self.ca_bundle or True,
        }
        if self.client_cert:
            kwargs["cert"] = (self.client_cert, self.client_key) if self.client_key else self.client_cert
        try:
            response = self.session.get(url, **kwargs)
        except requests.RequestException as exc:
            raise ListFetchError(f"network error fetching {url}: {exc}") from exc
        try:
            if response.status_code != 200:
                raise ListFetchError(f"HTTP {response.status_code} from {url}")
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if content_type not in XML_CONTENT_TYPES:
                raise ListFetchError(
                    f"content type {content_type or '(none)'!r} from {url} is not text/xml or application/xml"
                )
            body = bytearray()
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise ListFetchError(f"{url} is larger than {self.max_bytes} bytes")
            except requests.RequestException as exc:
                raise ListFetchError(f"network error reading {url}: {exc}") from exc
            return bytes(body)
        finally:
            response.close()

    def _read_file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise ListFetchError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if len(data) > self.max_bytes:
            raise ListFetchError(f"{path} is larger than {self.max_bytes} bytes")
        return data

    # ----------------------------------------------------------------------------------------------------------
    # Cache

    def cache_path(self, kind: ListKind) -> Path | None:
        return self.cache_dir / kind.file_name if self.cache_dir is not None else None

    def _write_cache(self, kind: ListKind, raw: bytes) -> str | None:
        """Write the raw bytes atomically (temp file + os.replace). Returns an error text on failure."""
        path = self.cache_path(kind)
        if path is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{kind.file_name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(raw)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            reason = f"cache write failed for {path}: {exc}"
            log.error(reason, extra={"medmij_list": kind.value, "list_event": "cache_write_failed", "error": str(exc)})
            return reason
        return None

    def load_cache(self) -> dict[ListKind, bool]:
        """Load the persisted copies (validated again) so a restart works offline; returns what was loaded.

        A cached copy never replaces a newer version already in memory. Its ``fetched_at`` is the file's mtime, so
        an old cache shows up as stale.
        """
        loaded: dict[ListKind, bool] = {}
        for kind in self.urls:
            path = self.cache_path(kind)
            loaded[kind] = False
            if path is None or not path.is_file():
                continue
            extra = {"medmij_list": kind.value, "cache_path": str(path)}
            try:
                raw = self._read_file(str(path))
                parsed = parse_list(raw, development=self.development, expected_kind=kind, max_bytes=self.max_bytes)
                mtime = path.stat().st_mtime
            except (ListError, OSError) as exc:
                log.warning(
                    "MedMij %s cache %s unusable: %s",
                    kind.value,
                    path,
                    exc,
                    extra={**extra, "list_event": "cache_invalid", "error": str(exc)},
                )
                with self._lock:
                    self._entries[kind].last_error = f"cache unusable: {exc}"
                    self._entries[kind].last_error_at = self._clock()
                continue
            with self._lock:
                entry = self._entries[kind]
                if entry.parsed is not None and entry.parsed.volgnummer >= parsed.volgnummer:
                    continue
                entry.parsed, entry.raw, entry.fetched_at = parsed, raw, mtime
            loaded[kind] = True
            log.info(
                "MedMij %s loaded from cache (Volgnummer %s)",
                kind.value,
                parsed.volgnummer,
                extra={**extra, "list_event": "cache_loaded", "volgnummer": parsed.volgnummer},
            )
        return loaded

    # ----------------------------------------------------------------------------------------------------------
    # Background refresh

    def start(self) -> None:
        """Start a daemon thread that refreshes now and then every ``interval`` seconds (≤ 900 s, §2.7)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="medmij-lists-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10) -> None:
        """Stop the background thread (waits for a running refresh up to ``timeout`` seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # never let the thread die; refresh() already records per-list errors
                log.exception("MedMij list refresh crashed", extra={"list_event": "refresh_crashed"})
            if self._stop.wait(self.interval):
                break
