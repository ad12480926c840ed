"""ListService failure modes without internet: a local HTTPS server (throwaway CA) and injected sessions (§2.7)."""

from __future__ import annotations

import io
import logging
import os
import time

import pytest
import requests

from dvza.devtools.processes import free_port
from medmij_lists import ListKind
from medmij_lists import ListService
from tests.medmij_lists.conftest import ListServer
from tests.medmij_lists.conftest import Pki
from tests.medmij_lists.samples import gnl_xml
from tests.medmij_lists.samples import ocl_xml
from tests.medmij_lists.samples import whl_xml
from tests.medmij_lists.samples import zal_xml


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _serve_all(server: ListServer, volgnummer: int = 1) -> dict[ListKind, str]:
    return {
        ListKind.ZAL: server.serve("/MedMij_Zorgaanbiederslijst.xml", zal_xml(volgnummer)),
        ListKind.OCL: server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(volgnummer)),
        ListKind.GNL: server.serve("/MedMij_Gegevensdienstnamenlijst.xml", gnl_xml(volgnummer)),
        ListKind.WHL: server.serve("/MedMij_Whitelist.xml", whl_xml(volgnummer)),
    }


def _service(urls, pki: Pki, tmp_path, **kwargs) -> ListService:
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("ca_bundle", str(pki.ca))
    kwargs.setdefault("timeout", 5)
    return ListService(urls, **kwargs)


@pytest.fixture()
def loaded(list_server: ListServer, pki: Pki, tmp_path) -> tuple[ListService, ListServer]:
    service = _service(_serve_all(list_server), pki, tmp_path)
    statuses = service.refresh()
    assert all(s.volgnummer == 1 and s.last_error is None for s in statuses.values()), statuses
    return service, list_server


def test_refresh_over_https(loaded) -> None:
    service, server = loaded
    assert service.ocl.organisatienaam("pgo.example.nl") == "Voorbeeld PGO"
    assert service.gnl.weergavenaam("48") == "Basisgegevens zorg"
    assert service.whitelist.contains("dvza.example.nl")
    assert service.zal.aanbieder("voorbeeldziekenhuis").gegevensdienst("48").resource_endpoints
    assert service.current(ListKind.OCL) is service.ocl
    status = service.status()[ListKind.OCL]
    assert status.stale is False
    assert status.age_seconds is not None and status.age_seconds < 60
    assert status.as_dict()["volgnummer"] == 1
    assert server.requests[0]["headers"]["Accept"].startswith("application/xml")


def test_untrusted_server_certificate_is_refused(list_server: ListServer, pki: Pki, tmp_path) -> None:
    url = list_server.serve("/ocl.xml", ocl_xml())
    service = _service({ListKind.OCL: url}, pki, tmp_path, ca_bundle=None)  # system trust store: test CA unknown
    service.refresh()
    assert service.ocl is None
    assert "network error" in service.status()[ListKind.OCL].last_error


def _assert_kept(service: ListService, kind: ListKind, *fragments: str) -> None:
    status = service.status()[kind]
    assert service.current(kind) is not None
    assert status.volgnummer == 1, status
    assert status.last_error, status
    for fragment in fragments:
        assert fragment in status.last_error, status.last_error
    assert status.last_error_at is not None


def test_network_error_keeps_last_good(loaded) -> None:
    service, _ = loaded
    service.urls[ListKind.OCL] = f"https://127.0.0.1:{free_port()}/MedMij_OAuthclientlist.xml"
    service.refresh()
    _assert_kept(service, ListKind.OCL, "network error")


def test_http_500_keeps_last_good(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", b"boom", status=500, content_type="text/plain")
    service.refresh()
    _assert_kept(service, ListKind.OCL, "HTTP 500")


def test_404_keeps_last_good(loaded) -> None:
    service, server = loaded
    del server.routes["/MedMij_Whitelist.xml"]
    service.refresh()
    _assert_kept(service, ListKind.WHL, "HTTP 404")


def test_wrong_content_type_keeps_last_good(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(2), content_type="text/html")
    service.refresh()
    _assert_kept(service, ListKind.OCL, "text/html")


def test_content_type_with_charset_is_fine(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(2), content_type="text/xml; charset=utf-8")
    service.refresh()
    assert service.ocl.volgnummer == 2


def test_schema_invalid_keeps_last_good(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_Whitelist.xml", whl_xml(2, hosts=["nodot"]))
    service.refresh()
    _assert_kept(service, ListKind.WHL, "schema", "nodot")


def test_empty_list_keeps_last_good(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_Whitelist.xml", whl_xml(2, hosts=[]))
    service.refresh()
    _assert_kept(service, ListKind.WHL, "no entries")
    assert service.whitelist.contains("pgo.example.nl")


def test_wrong_kind_at_url_keeps_last_good(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", gnl_xml(5))
    service.refresh()
    _assert_kept(service, ListKind.OCL, "expected a OCL")


def test_oversize_download_keeps_last_good(loaded) -> None:
    service, server = loaded
    service.max_bytes = 600
    server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(2) + b"<!--" + b"x" * 2000 + b"-->")
    service.refresh([ListKind.OCL])
    _assert_kept(service, ListKind.OCL, "larger than 600")


def test_rollback_is_refused(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_Gegevensdienstnamenlijst.xml", gnl_xml(5))
    service.refresh()
    assert service.gnl.volgnummer == 5
    server.serve("/MedMij_Gegevensdienstnamenlijst.xml", gnl_xml(4, diensten=[("99", "Teruggerold")]))
    service.refresh()
    status = service.status()[ListKind.GNL]
    assert service.gnl.volgnummer == 5
    assert service.gnl.weergavenaam("99") is None
    assert "rollback" in status.last_error and "4" in status.last_error and "5" in status.last_error
    # the cache still holds the good version
    assert (service.cache_dir / "MedMij_Gegevensdienstnamenlijst.xml").read_bytes() == gnl_xml(5)


def test_equal_volgnummer_is_unchanged_and_clears_the_error(list_server: ListServer, pki: Pki, tmp_path) -> None:
    clock = Clock()
    service = _service(_serve_all(list_server), pki, tmp_path, clock=clock)
    service.refresh()
    first = service.ocl
    list_server.serve("/MedMij_OAuthclientlist.xml", b"x", status=503, content_type="text/plain")
    clock.now += 100
    service.refresh()
    assert service.status()[ListKind.OCL].last_error
    list_server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(1))
    clock.now += 100
    service.refresh()
    status = service.status()[ListKind.OCL]
    assert service.ocl is first  # unchanged: the cached object is kept
    assert status.last_error is None
    assert status.age_seconds == 0  # confirmed from source just now


def test_partial_failure_updates_only_the_good_lists(loaded) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(2, clients=[("nieuw.example.nl", "Nieuwe PGO")]))
    server.serve("/MedMij_Gegevensdienstnamenlijst.xml", b"kapot", status=502, content_type="text/plain")
    server.serve("/MedMij_Whitelist.xml", whl_xml(3))
    statuses = service.refresh()
    assert service.ocl.volgnummer == 2 and service.ocl.contains("nieuw.example.nl")
    assert statuses[ListKind.OCL].last_error is None
    assert service.gnl.volgnummer == 1 and "HTTP 502" in statuses[ListKind.GNL].last_error
    assert service.whitelist.volgnummer == 3
    assert service.zal.volgnummer == 1 and statuses[ListKind.ZAL].last_error is None


def test_cache_survives_a_restart_offline(loaded, pki: Pki, tmp_path) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", ocl_xml(7))
    service.refresh()
    cache = service.cache_dir
    assert sorted(p.name for p in cache.iterdir()) == sorted(k.file_name for k in service.urls)  # no temp files left
    assert (cache / "MedMij_OAuthclientlist.xml").read_bytes() == ocl_xml(7)  # raw bytes as fetched

    dead = f"https://127.0.0.1:{free_port()}"
    offline = _service({k: dead + "/" + k.file_name for k in service.urls}, pki, tmp_path, cache_dir=cache)
    assert offline.ocl is None
    loaded_kinds = offline.load_cache()
    assert all(loaded_kinds.values()), loaded_kinds
    assert offline.ocl.volgnummer == 7
    offline.refresh()
    assert offline.ocl.volgnummer == 7
    assert offline.gnl.weergavenaam("48") == "Basisgegevens zorg"
    assert "network error" in offline.status()[ListKind.OCL].last_error


def test_invalid_cache_file_is_ignored(tmp_path, pki: Pki) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "MedMij_OAuthclientlist.xml").write_bytes(b"<not-a-list/>")
    service = _service({ListKind.OCL: str(tmp_path / "missing.xml")}, pki, tmp_path, cache_dir=cache)
    assert service.load_cache() == {ListKind.OCL: False}
    assert service.ocl is None
    assert "cache unusable" in service.status()[ListKind.OCL].last_error


def test_cache_never_replaces_a_newer_list_in_memory(tmp_path, pki: Pki) -> None:
    source = tmp_path / "ocl.xml"
    source.write_bytes(ocl_xml(3))
    service = _service({ListKind.OCL: str(source)}, pki, tmp_path)
    service.refresh()
    (service.cache_dir / "MedMij_OAuthclientlist.xml").write_bytes(ocl_xml(2))
    assert service.load_cache() == {ListKind.OCL: False}
    assert service.ocl.volgnummer == 3


def test_staleness(tmp_path, pki: Pki) -> None:
    clock = Clock()
    source = tmp_path / "whl.xml"
    source.write_bytes(whl_xml())
    service = _service({ListKind.WHL: str(source)}, pki, tmp_path, interval=60, clock=clock)
    assert service.status()[ListKind.WHL].stale is True  # never loaded
    assert service.status()[ListKind.WHL].as_dict()["fetched_at"] is None
    service.refresh()
    assert service.status()[ListKind.WHL].stale is False
    source.unlink()
    clock.now += 119
    service.refresh()  # fails: age keeps growing
    status = service.status()[ListKind.WHL]
    assert status.stale is False and status.age_seconds == 119
    clock.now += 2
    status = service.status()[ListKind.WHL]
    assert status.stale is True and status.age_seconds == 121
    assert service.whitelist is not None  # stale, but still the last good version


def test_cached_copy_age_comes_from_the_file(tmp_path, pki: Pki) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "MedMij_Whitelist.xml"
    path.write_bytes(whl_xml())
    old = time.time() - 3600
    os.utime(path, (old, old))
    service = _service({ListKind.WHL: str(tmp_path / "none.xml")}, pki, tmp_path, cache_dir=cache, interval=900)
    service.load_cache()
    status = service.status()[ListKind.WHL]
    assert status.volgnummer == 1
    assert status.stale is True and status.age_seconds >= 3599


def test_refresh_if_due(tmp_path, pki: Pki) -> None:
    clock = Clock()
    source = tmp_path / "gnl.xml"
    source.write_bytes(gnl_xml(1))
    service = _service({ListKind.GNL: str(source)}, pki, tmp_path, interval=300, clock=clock)
    assert service.refresh_if_due() is True
    source.write_bytes(gnl_xml(2))
    clock.now += 299
    assert service.refresh_if_due() is False
    assert service.gnl.volgnummer == 1
    clock.now += 1
    assert service.refresh_if_due() is True
    assert service.gnl.volgnummer == 2


def test_local_files_and_file_urls(tmp_path, pki: Pki) -> None:
    (tmp_path / "ocl.xml").write_bytes(ocl_xml())
    (tmp_path / "gnl.xml").write_bytes(gnl_xml())
    service = _service(
        {ListKind.OCL: str(tmp_path / "ocl.xml"), ListKind.GNL: (tmp_path / "gnl.xml").as_uri()}, pki, tmp_path
    )
    service.refresh()
    assert service.ocl.volgnummer == 1 and service.gnl.volgnummer == 1


def test_plain_http_is_refused_unless_development(tmp_path, pki: Pki) -> None:
    service = _service({ListKind.OCL: "http://127.0.0.1:9/ocl.xml"}, pki, tmp_path)
    service.refresh()
    assert "plain http" in service.status()[ListKind.OCL].last_error
    service = _service({ListKind.OCL: "ftp://example.nl/ocl.xml"}, pki, tmp_path)
    service.refresh()
    assert "unsupported" in service.status()[ListKind.OCL].last_error


def test_development_lists_need_development_mode(tmp_path, pki: Pki) -> None:
    (tmp_path / "ocl.xml").write_bytes(ocl_xml(clients=[("pgo.localhost", "Demo PGO")]))
    strict = _service({ListKind.OCL: str(tmp_path / "ocl.xml")}, pki, tmp_path, cache_dir=None)
    strict.refresh()
    assert strict.ocl is None and "special-use" in strict.status()[ListKind.OCL].last_error
    dev = _service({ListKind.OCL: str(tmp_path / "ocl.xml")}, pki, tmp_path, cache_dir=None, development=True)
    dev.refresh()
    assert dev.ocl.contains("pgo.localhost")


def test_interval_limit() -> None:
    with pytest.raises(ValueError, match="900"):
        ListService({}, cache_dir=None, interval=901)
    with pytest.raises(ValueError):
        ListService({}, cache_dir=None, interval=0)
    assert ListService({}, cache_dir=None).interval == 900


def test_client_certificate_is_used_for_mutual_tls(mtls_server: ListServer, pki: Pki, tmp_path) -> None:
    url = mtls_server.serve("/MedMij_Whitelist.xml", whl_xml())
    without = _service({ListKind.WHL: url}, pki, tmp_path, cache_dir=None)
    without.refresh()
    assert without.whitelist is None
    assert "network error" in without.status()[ListKind.WHL].last_error

    with_cert = _service(
        {ListKind.WHL: url},
        pki,
        tmp_path,
        cache_dir=None,
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
    )
    with_cert.refresh()
    assert with_cert.whitelist is not None, with_cert.status()
    subject = dict(x[0] for x in mtls_server.requests[-1]["peer_cert"]["subject"])
    assert subject["commonName"] == "dvza.example.nl"


class RecordingSession:
    """A stand-in for requests.Session that records the keyword arguments of each GET."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls: list[tuple[str, dict]] = []

    def get(self, url: str, **kwargs) -> requests.Response:
        self.calls.append((url, kwargs))
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/xml"
        response.raw = io.BytesIO(self.body)
        response.url = url
        return response


def test_client_cert_and_ca_bundle_are_passed_to_requests(tmp_path) -> None:
    session = RecordingSession(whl_xml())
    service = ListService(
        {ListKind.WHL: "https://stelselnode.example.nl/MedMij_Whitelist.xml?api=2"},
        cache_dir=None,
        client_cert="/etc/dvza/client.pem",
        client_key="/etc/dvza/client.key",
        ca_bundle="/etc/dvza/ca.pem",
        timeout=7,
        session=session,
    )
    service.refresh()
    assert service.whitelist.volgnummer == 1
    url, kwargs = session.calls[0]
    assert url == "https://stelselnode.example.nl/MedMij_Whitelist.xml?api=2"
    assert kwargs["cert"] == ("/etc/dvza/client.pem", "/etc/dvza/client.key")
    assert kwargs["verify"] == "/etc/dvza/ca.pem"
    assert kwargs["timeout"] == 7

    single = RecordingSession(whl_xml())
    ListService(
        {ListKind.WHL: "https://a.example.nl/w.xml"}, cache_dir=None, client_cert="/c.pem", session=single
    ).refresh()
    assert single.calls[0][1]["cert"] == "/c.pem"
    assert single.calls[0][1]["verify"] is True

    bare = RecordingSession(whl_xml())
    ListService({ListKind.WHL: "https://a.example.nl/w.xml"}, cache_dir=None, session=bare).refresh()
    assert "cert" not in bare.calls[0][1]


def test_client_key_without_cert_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        ListService({}, cache_dir=None, client_key="/k.pem")


def test_from_env(tmp_path) -> None:
    env = {
        "DVZA_LISTS_OCL_URL": "https://stelselnode.medmij.nl/MedMij_OAuthclientlist.xml?api=2",
        "DVZA_LISTS_WHL_URL": "/srv/lists/MedMij_Whitelist.xml",
        "DVZA_LISTS_GNL_URL": "  ",
        "DVZA_LISTS_CACHE_DIR": str(tmp_path),
        "DVZA_LISTS_CLIENT_CERT": "/c.pem",
        "DVZA_LISTS_CLIENT_KEY": "/k.pem",
        "DVZA_LISTS_CA_BUNDLE": "/ca.pem",
        "DVZA_LISTS_INTERVAL": "600",
        "DVZA_LISTS_DEVELOPMENT": "true",
    }
    service = ListService.from_env(env)
    assert service.urls == {
        ListKind.OCL: "https://stelselnode.medmij.nl/MedMij_OAuthclientlist.xml?api=2",
        ListKind.WHL: "/srv/lists/MedMij_Whitelist.xml",
    }
    assert service.cache_dir == tmp_path
    assert (service.client_cert, service.client_key, service.ca_bundle) == ("/c.pem", "/k.pem", "/ca.pem")
    assert service.interval == 600 and service.development is True
    assert ListService.from_env({}).urls == {} and ListService.from_env({}).development is False
    with pytest.raises(ValueError, match="DVZA_LISTS_INTERVAL"):
        ListService.from_env({"DVZA_LISTS_INTERVAL": "soms"})
    with pytest.raises(ValueError, match="900"):
        ListService.from_env({"DVZA_LISTS_INTERVAL": "3600"})


def test_background_thread_refreshes(tmp_path, pki: Pki) -> None:
    source = tmp_path / "ocl.xml"
    source.write_bytes(ocl_xml(1))
    service = _service({ListKind.OCL: str(source)}, pki, tmp_path, interval=0.05)
    service.start()
    try:
        assert service.running
        deadline = time.monotonic() + 5
        while service.ocl is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.ocl.volgnummer == 1
        source.write_bytes(ocl_xml(2))
        while service.ocl.volgnummer != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.ocl.volgnummer == 2
    finally:
        service.stop()
    assert not service.running


def test_concurrent_refresh_and_reads_are_consistent(tmp_path, pki: Pki) -> None:
    import threading

    source = tmp_path / "whl.xml"
    source.write_bytes(whl_xml(1))
    service = _service({ListKind.WHL: str(source)}, pki, tmp_path)
    service.refresh()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(300):
                whl = service.whitelist
                assert whl is not None and whl.contains("pgo.example.nl")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for th in threads:
        th.start()
    for n in range(2, 12):
        source.write_bytes(whl_xml(n))
        service.refresh()
    for th in threads:
        th.join()
    assert not errors
    assert service.whitelist.volgnummer == 11


def test_structured_logging(loaded, caplog) -> None:
    service, server = loaded
    server.serve("/MedMij_OAuthclientlist.xml", b"nope", status=500, content_type="text/plain")
    server.serve("/MedMij_Whitelist.xml", whl_xml(2))
    with caplog.at_level(logging.INFO, logger="medmij_lists"):
        service.refresh()
    failed = [r for r in caplog.records if getattr(r, "list_event", None) == "refresh_failed"]
    assert len(failed) == 1
    assert failed[0].medmij_list == "OCL" and failed[0].volgnummer == 1 and "HTTP 500" in failed[0].error
    updated = [r for r in caplog.records if getattr(r, "list_event", None) == "updated"]
    assert [(r.medmij_list, r.volgnummer, r.previous_volgnummer) for r in updated] == [("WHL", 2, 1)]
    assert all(r.name == "medmij_lists" for r in caplog.records)


def test_status_dict_is_json_ready(loaded) -> None:
    import json

    service, _ = loaded
    data = json.loads(json.dumps(service.status_dict()))
    assert set(data) == {"ZAL", "OCL", "GNL", "WHL"}
    assert data["OCL"]["stale"] is False and data["OCL"]["volgnummer"] == 1
