"""Configuration: defaults, then ``DVZA_*`` environment variables, then the ``config`` mapping
given to :func:`dvza.create_app` (tests). Validated at start-up so a bad deployment fails fast.

Environment values are parsed as JSON when they look like JSON (Flask ``from_prefixed_env``), so
``DVZA_QUALIFICATION_MODE=true`` and ``DVZA_GEGEVENSDIENSTEN='{"48": "bgz"}'`` work.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from pathlib import Path

from fhir_api.access import DEFAULT_GEGEVENSDIENSTEN
from fhir_api.access import PROFILES


class ConfigError(ValueError):
    """The configuration cannot work; the message says which key and why."""


def defaults(instance_path: str) -> dict[str, t.Any]:
    return {
        # --- storage
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'dvza.sqlite3'}",
        "DATABASE_ECHO": False,
        # --- identity of this DVZA and its aanbieder (consent page, lists)
        "AANBIEDER_NAAM": "umcdemo@medmij",
        "AANBIEDER_WEERGAVENAAM": "UMC Demo",
        "DVA_NAAM": "medmij-dvza (demo)",
        "DVA_TELEFOON": "088 000 0000",
        # --- FHIR resource server
        "FHIR_BASE_PATH": "/fhir",
        "PUBLIC_BASE_URL": None,
        "GEGEVENSDIENSTEN": dict(DEFAULT_GEGEVENSDIENSTEN),
        "DEFAULT_PAGE_SIZE": 100,
        "MAX_PAGE_SIZE": 1000,
        "MAX_BODY_BYTES": 20 * 1024 * 1024,
        "MAX_BUNDLE_ENTRIES": 200,
        "MAX_ATTACHMENT_BYTES": 15 * 1024 * 1024,
        "TIMEZONE": "Europe/Amsterdam",
        # --- authorization server (oauth)
        "SCOPE_DIALECT": "both",
        "TOKEN_SCOPE_FORMAT": "ids",
        "CODE_LIFETIME": 900,
        "ACCESS_TOKEN_LIFETIME": 900,
        "LONG_TERM_CONSENT": False,
        "LOGIN_ADAPTER": "development",
        "DEV_LOGIN_PERSONS": [],
        "FRONTCHANNEL_SECURE_COOKIES": True,
        "PUBLIC_HOSTNAME": "localhost",
        "REQUIRE_WHITELIST": True,
        # --- MedMij lists (dvza/lists.py): a folder with the official file names, or one URL per list
        "LISTS_DIR": None,
        "LISTS_ZAL_URL": None,
        "LISTS_OCL_URL": None,
        "LISTS_GNL_URL": None,
        "LISTS_WHL_URL": None,
        "LISTS_CACHE_DIR": None,
        "LISTS_CLIENT_CERT": None,
        "LISTS_CLIENT_KEY": None,
        "LISTS_CA_BUNDLE": None,
        "LISTS_INTERVAL": 900,
        "LISTS_DEVELOPMENT": False,
        "LISTS_BACKGROUND_REFRESH": True,
        #: names of gegevensdiensten the GNL does not carry (id -> Weergavenaam); the GNL wins
        "GEGEVENSDIENST_NAMES": {},
        # --- qualification / test mode: Nictiz QualificationTokens.json tokens, PUT test data, $purge
        "QUALIFICATION_MODE": False,
        #: the Nictiz TestScripts repository for client qualification (default: $DVZA_SHARED_DIR/conformance/…)
        "QUALIFICATION_SCRIPTS_DIR": None,
        # --- secrets
        "SECRET_KEY": None,
        "BSN_HMAC_KEY": None,
        # --- return queue: consumer name -> SHA-256 of its API key (``dvza queue apikey NAME``)
        "QUEUE_API_KEYS": {},
        # --- the queue page for hospital staff: name -> Werkzeug password hash (``dvza queue user NAME``)
        "HOSPITAL_USERS": {},
        # --- logging
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "AUDIT_LOG_FILE": None,
        # --- TLS / proxy (backchannel client certificates)
        "TRUSTED_PROXIES": [],
        "CLIENT_CERT_HEADER": "X-SSL-Client-Cert",
        "PROXY_FIX": False,
    }


def load(app_config: t.Any, instance_path: str, overrides: t.Mapping[str, t.Any] | None) -> None:
    """Fill ``app.config``: defaults → environment (``DVZA_*``) → ``overrides``; then validate."""
    app_config.from_mapping(defaults(instance_path))
    app_config.from_prefixed_env("DVZA")
    if overrides:
        app_config.from_mapping(overrides)
    _secrets(app_config, instance_path)
    validate(app_config)


def _secrets(config: t.Any, instance_path: str) -> None:
    """A development secret is generated once and kept in the instance folder (mode 0600);
    production deployments set ``DVZA_SECRET_KEY`` (several hosts must share it)."""
    if not config.get("SECRET_KEY"):
        path = Path(instance_path) / "secret_key"
        if path.exists():
            config["SECRET_KEY"] = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_hex(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(key)
            config["SECRET_KEY"] = key
    if not config.get("BSN_HMAC_KEY"):
        config["BSN_HMAC_KEY"] = config["SECRET_KEY"]


def validate(config: t.Mapping[str, t.Any]) -> None:
    mapping = config["GEGEVENSDIENSTEN"]
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError("GEGEVENSDIENSTEN must map gegevensdienst ids to profiles, e.g. {\"48\": \"bgz\"}")
    for dienst, profile in mapping.items():
        if profile not in PROFILES:
            raise ConfigError(
                f"GEGEVENSDIENSTEN[{dienst!r}] = {profile!r} is not a known profile ({', '.join(sorted(PROFILES))})"
            )
    base = config["FHIR_BASE_PATH"]
    if not isinstance(base, str) or not base.startswith("/"):
        raise ConfigError("FHIR_BASE_PATH must start with '/'")
    for key in ("DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_BODY_BYTES", "MAX_BUNDLE_ENTRIES", "MAX_ATTACHMENT_BYTES"):
        if not isinstance(config[key], int) or config[key] <= 0:
            raise ConfigError(f"{key} must be a positive integer")
    if config["DEFAULT_PAGE_SIZE"] > config["MAX_PAGE_SIZE"]:
        raise ConfigError("DEFAULT_PAGE_SIZE may not exceed MAX_PAGE_SIZE")
    if config["SCOPE_DIALECT"] not in ("r1", "r2", "both"):
        raise ConfigError("SCOPE_DIALECT must be r1, r2 or both")
    if config["TOKEN_SCOPE_FORMAT"] not in ("ids", "request"):
        raise ConfigError("TOKEN_SCOPE_FORMAT must be ids or request")
    for key in ("CODE_LIFETIME", "ACCESS_TOKEN_LIFETIME"):
        if not isinstance(config[key], int) or not 1 <= config[key] <= 3600:
            raise ConfigError(f"{key} must be a number of seconds between 1 and 3600")
    interval = config["LISTS_INTERVAL"]
    if not isinstance(interval, int | float) or not 0 < interval <= 900:
        raise ConfigError("LISTS_INTERVAL must be a number of seconds, at most 900 (MedMij: refresh every 15 minutes)")
    if not isinstance(config["GEGEVENSDIENST_NAMES"], dict):
        raise ConfigError("GEGEVENSDIENST_NAMES must map gegevensdienst ids to names")
    if config["LOG_FORMAT"] not in ("json", "console"):
        raise ConfigError("LOG_FORMAT must be json or console")
    keys = config["QUEUE_API_KEYS"]
    if not isinstance(keys, dict) or any(len(str(v)) != 64 for v in keys.values()):
        raise ConfigError("QUEUE_API_KEYS must map consumer names to SHA-256 hex digests of their keys")
    users = config["HOSPITAL_USERS"]
    if not isinstance(users, dict) or any(not str(v).startswith(("scrypt:", "pbkdf2:")) for v in users.values()):
        raise ConfigError("HOSPITAL_USERS must map names to Werkzeug password hashes (dvza queue user NAME)")
    if not isinstance(config["TRUSTED_PROXIES"], list):
        raise ConfigError("TRUSTED_PROXIES must be a JSON list of addresses or networks")
    if not str(config["DATABASE_URL"]).startswith(("sqlite", "postgresql")):
        raise ConfigError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
