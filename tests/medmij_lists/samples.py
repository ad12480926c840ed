"""Sample list documents and paths to the shared MedMij reference lists, for the medmij_lists tests."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _shared_dir() -> Path:
    """DVZA_SHARED_DIR, else ``../shared`` next to the repository; in a git worktree next to the main checkout."""
    if os.environ.get("DVZA_SHARED_DIR"):
        return Path(os.environ["DVZA_SHARED_DIR"])
    candidate = REPO.parent / "shared"
    git = REPO / ".git"
    if not candidate.is_dir() and git.is_file():
        gitdir = git.read_text().partition("gitdir:")[2].strip()
        if gitdir:  # <main>/.git/worktrees/<name>
            main_checkout = Path(gitdir).resolve().parent.parent.parent
            if (main_checkout.parent / "shared").is_dir():
                return main_checkout.parent / "shared"
    return candidate


SHARED = _shared_dir()
LISTS = SHARED / "medmij" / "lists"

OCL_NS = "xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release2/"
GNL_NS = "xmlns://afsprakenstelsel.medmij.nl/gegevensdienstnamenlijst/release1/"
WHL_NS = "xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/"
ZAL2_NS = "xmlns://afsprakenstelsel.medmij.nl/zorgaanbiederslijst/release2/"
ZAL3_NS = "xmlns://afsprakenstelsel.medmij.nl/zorgaanbiederslijst/release3/"

STAMP = "2026-01-02T03:04:05Z"


def ocl_xml(
    volgnummer: int = 1, clients: t.Sequence[tuple[str, str]] = (("pgo.example.nl", "Voorbeeld PGO"),)
) -> bytes:
    body = "".join(
        f"<OAuthclient><Hostname>{h}</Hostname><OAuthclientOrganisatienaam>{n}</OAuthclientOrganisatienaam>"
        "</OAuthclient>"
        for h, n in clients
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<OAuthclientlist xmlns="{OCL_NS}">\n'
        f"<Tijdstempel>{STAMP}</Tijdstempel>\n<Volgnummer>{volgnummer}</Volgnummer>\n"
        f"<OAuthclients>{body}</OAuthclients>\n</OAuthclientlist>\n"
    ).encode()


def gnl_xml(volgnummer: int = 1, diensten: t.Sequence[tuple[str, str]] = (("48", "Basisgegevens zorg"),)) -> bytes:
    body = "".join(
        f"<Gegevensdienst><GegevensdienstId>{i}</GegevensdienstId><Weergavenaam>{n}</Weergavenaam></Gegevensdienst>"
        for i, n in diensten
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Gegevensdienstnamenlijst xmlns="{GNL_NS}">\n'
        f"<Tijdstempel>{STAMP}</Tijdstempel>\n<Volgnummer>{volgnummer}</Volgnummer>\n"
        f"<Gegevensdiensten>{body}</Gegevensdiensten>\n</Gegevensdienstnamenlijst>\n"
    ).encode()


def whl_xml(volgnummer: int = 1, hosts: t.Sequence[str] = ("pgo.example.nl", "dvza.example.nl")) -> bytes:
    body = "".join(f"<MedMijNode><Hostname>{h}</Hostname></MedMijNode>" for h in hosts)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Whitelist xmlns="{WHL_NS}">\n'
        f"<Tijdstempel>{STAMP}</Tijdstempel>\n<Volgnummer>{volgnummer}</Volgnummer>\n"
        f"<MedMijNodes>{body}</MedMijNodes>\n</Whitelist>\n"
    ).encode()


def zal_xml(
    volgnummer: int = 1,
    *,
    naam: str = "voorbeeldziekenhuis@medmij",
    authorize: str = "https://dvza.example.nl/oauth/authorize",
    token: str = "https://dvza.example.nl:8444/oauth/token",
    resource: str = "https://dvza.example.nl:8444/fhir",
    ids: t.Sequence[str] = ("48",),
) -> bytes:
    diensten = "".join(
        f"<Gegevensdienst><GegevensdienstId>{i}</GegevensdienstId>"
        f"<AuthorizationEndpoint><AuthorizationEndpointuri>{authorize}</AuthorizationEndpointuri></AuthorizationEndpoint>"
        f"<TokenEndpoint><TokenEndpointuri>{token}</TokenEndpointuri></TokenEndpoint>"
        f"<Systeemrollen><Systeemrol><Systeemrolcode>MM-2.1-BZB-FHIR</Systeemrolcode>"
        f"<ResourceEndpoint><ResourceEndpointuri>{resource}</ResourceEndpointuri></ResourceEndpoint>"
        f"</Systeemrol></Systeemrollen></Gegevensdienst>"
        for i in ids
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Zorgaanbiederslijst xmlns="{ZAL2_NS}">\n'
        f"<Tijdstempel>{STAMP}</Tijdstempel>\n<Volgnummer>{volgnummer}</Volgnummer>\n"
        f"<Zorgaanbieders><Zorgaanbieder><Zorgaanbiedernaam>{naam}</Zorgaanbiedernaam>"
        f"<Gegevensdiensten>{diensten}</Gegevensdiensten></Zorgaanbieder></Zorgaanbieders>\n</Zorgaanbiederslijst>\n"
    ).encode()


def needs_lists() -> Path:
    if not LISTS.is_dir():
        pytest.skip(f"shared MedMij reference lists not found at {LISTS} (set DVZA_SHARED_DIR)")
    return LISTS
