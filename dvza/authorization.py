"""Wiring of the authorization server (``oauth``): settings from the configuration, the MedMij
lists as its directory, the login adapter, and the hospital-side answers it needs (who a BSN is,
which gegevensdiensten have data)."""

from __future__ import annotations

import importlib
import typing as t
from datetime import timedelta

from flask import Flask
from flask import current_app

from fhir_api.access import PROFILES
from oauth import server as oauth_server
from oauth.directory import Directory
from oauth.login import DevelopmentLogin
from oauth.login import LoginAdapter
from oauth.services import OAuthServices
from oauth.services import OAuthSettings

from . import availability
from . import config as config_module
from . import identity
from . import lists

if t.TYPE_CHECKING:
    from .audit import AuditLog
    from .db import Database


def settings_from(config: t.Mapping[str, t.Any]) -> OAuthSettings:
    mapping = config["GEGEVENSDIENSTEN"]
    by_usecase: dict[str, set[str]] = {"verzamelen": set(), "delen": set()}
    for dienst, profile in mapping.items():
        by_usecase[PROFILES[profile].usecase].add(dienst)
    return OAuthSettings(
        aanbieder=config["AANBIEDER_NAAM"], aanbieder_weergavenaam=config["AANBIEDER_WEERGAVENAAM"],
        dva_naam=config["DVA_NAAM"], dva_telefoon=config["DVA_TELEFOON"],
        verzamelen=frozenset(by_usecase["verzamelen"]), delen=frozenset(by_usecase["delen"]),
        scope_dialect=config["SCOPE_DIALECT"], token_scope_format=config["TOKEN_SCOPE_FORMAT"],
        code_lifetime=timedelta(seconds=config["CODE_LIFETIME"]),
        token_lifetime=timedelta(seconds=config["ACCESS_TOKEN_LIFETIME"]),
        long_term_consent=bool(config["LONG_TERM_CONSENT"]), location=config["PUBLIC_HOSTNAME"],
        trusted_proxies=tuple(config["TRUSTED_PROXIES"]), client_cert_header=config["CLIENT_CERT_HEADER"],
        require_whitelist=bool(config["REQUIRE_WHITELIST"]), timezone=config["TIMEZONE"],
        dienst_descriptions=config_module.descriptions(config), branding=config_module.branding(config),
    )


def login_adapter(config: t.Mapping[str, t.Any]) -> LoginAdapter:
    """``LOGIN_ADAPTER``: ``development`` (the DigiD stand-in) or ``package.module:factory`` — a
    callable taking the configuration and returning a :class:`~oauth.login.LoginAdapter`."""
    name = config["LOGIN_ADAPTER"]
    if name == "development":
        persons = [(str(p["name"]), str(p["bsn"])) for p in config["DEV_LOGIN_PERSONS"]]
        return DevelopmentLogin(persons)
    module_name, _, attribute = name.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return t.cast(LoginAdapter, factory(config))


def init_app(app: Flask, database: Database, audit: AuditLog, directory: Directory | None = None) -> None:
    config = app.config
    app.config.setdefault("SESSION_COOKIE_NAME", "dvza_session")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(config["FRONTCHANNEL_SECURE_COOKIES"])

    def patient_for_bsn(bsn: str) -> str | None:
        return identity.patient_for(database.session(), current_app.config["BSN_HMAC_KEY"], bsn)

    def patient_name(patient_id: str) -> str | None:
        from fhir_api.store import ResourceStore

        from .readable import human_name

        patient = ResourceStore(database.session()).load("Patient", patient_id)
        return (human_name(patient.get("name")) or None) if patient else None

    def available(patient_id: str, diensten: frozenset[str]) -> frozenset[str]:
        return availability.available_diensten(database.session(), patient_id, diensten,
                                               current_app.config["GEGEVENSDIENSTEN"])

    oauth_server.init_app(app, OAuthServices(
        settings=settings_from(config), session=database.session,
        directory=directory or app.extensions.get("dvza.directory") or lists.NoListsDirectory(),
        login=login_adapter(config), patient_for_bsn=patient_for_bsn, available_diensten=available,
        audit=audit.write, patient_name=patient_name,
    ))
