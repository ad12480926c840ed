"""Configuration: defaults, then ``DVZA_*`` environment variables, then the ``config`` mapping
given to :func:`dvza.create_app` (tests). Validated at start-up so a bad deployment fails fast.

Environment values are parsed as JSON when they look like JSON (Flask ``from_prefixed_env``), so
``DVZA_QUALIFICATION_MODE=true`` and ``DVZA_GEGEVENSDIENSTEN='{"48": "bgz"}'`` work.
"""

from __future__ import annotations

import os
import re
import secrets
import typing as t
from pathlib import Path

from fhir_api.access import DEFAULT_GEGEVENSDIENSTEN
from fhir_api.access import PROFILES
from oauth.branding import Branding

#: A short Dutch description (B1) of what each gegevensdienst holds, shown on the consent page under its GNL
#: name. ``GEGEVENSDIENST_BESCHRIJVINGEN`` adds to or overrides these per id ("" hides one).
DEFAULT_DESCRIPTIONS = {
    "48": "Je belangrijkste medische gegevens. Bijvoorbeeld: je problemen en diagnoses, medicijnen, allergieën, "
          "vaccinaties, uitslagen van metingen en van het laboratorium, behandelingen en afspraken. Ook wat over je "
          "leefstijl is vastgelegd (zoals roken, alcohol en drugs), je wilsverklaringen (zoals niet reanimeren), "
          "je zorgverzekering en waarschuwingen (zoals dragerschap van de MRSA-bacterie).",
    "51": "Documenten van je zorgverlener, zoals een ontslagbrief of een verwijsbrief (als PDF).",
    "52": "Metingen die in het ziekenhuis zijn gedaan, zoals je bloeddruk, gewicht, lengte, hartslag of temperatuur.",
    "53": "Metingen die je zelf hebt gedaan, zoals je bloeddruk, gewicht of bloedsuiker.",
    "57": "Documenten die je zelf naar je zorgverlener stuurt (als PDF).",
    "59": "Vragenlijsten die je zorgverlener je vraagt in te vullen.",
    "60": "Je antwoorden op een vragenlijst van je zorgverlener.",
}


class ConfigError(ValueError):
    """The configuration cannot work; the message says which key and why."""


def defaults(instance_path: str) -> dict[str, t.Any]:
    return {
        # --- storage
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'dvza.sqlite3'}",
        "DATABASE_ECHO": False,
        #: bring the database to the code's schema at start-up (dvza/migrate.py; safe with several instances).
        #: Off: the app refuses to start on an older schema and ``dvza db upgrade`` is a deployment step.
        "DB_AUTO_UPGRADE": True,
        #: SQLite only. NORMAL (with WAL): a commit survives the process crashing, but a power cut or OS crash
        #: may lose the last commits before a checkpoint (never corrupts). FULL: every commit is on disk before
        #: it is answered, at the cost of an fsync per commit (https://www.sqlite.org/pragma.html#pragma_synchronous)
        "SQLITE_SYNCHRONOUS": "NORMAL",
        #: PostgreSQL: ping a pooled connection before use only after it sat idle this many seconds (0: always)
        "DB_PING_AFTER_IDLE": 10,
        # --- identity of this DVZA and its aanbieder (consent page, lists)
        "AANBIEDER_NAAM": "umcdemo@medmij",
        "AANBIEDER_WEERGAVENAAM": "UMC Demo",
        "DVA_NAAM": "medmij-dvza (demo)",
        "DVA_TELEFOON": "088 000 0000",
        # --- house style of the person-facing pages (oauth/branding.py): logo file, colours, links
        "BRAND_LOGO": None,
        "BRAND_COLOURS": {},
        "BRAND_CONTACT_URL": None,
        "BRAND_PRIVACY_URL": None,
        # --- FHIR resource server
        "FHIR_BASE_PATH": "/fhir",
        "PUBLIC_BASE_URL": None,
        "GEGEVENSDIENSTEN": dict(DEFAULT_GEGEVENSDIENSTEN),
        "DEFAULT_PAGE_SIZE": 100,
        "MAX_PAGE_SIZE": 1000,
        "MAX_BODY_BYTES": 20 * 1024 * 1024,
        "MAX_BUNDLE_ENTRIES": 200,
        "MAX_ATTACHMENT_BYTES": 15 * 1024 * 1024,
        #: every other request body (OAuth, pages, queue API): Flask stops reading past it (413)
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "TIMEZONE": "Europe/Amsterdam",
        # --- authorization server (oauth)
        "SCOPE_DIALECT": "both",
        "TOKEN_SCOPE_FORMAT": "ids",
        "CODE_LIFETIME": 900,
        "ACCESS_TOKEN_LIFETIME": 900,
        "LONG_TERM_CONSENT": False,
        #: the person's login (DigiD): ``digid-saml``, ``oidc`` or ``package.module:factory``; unset means the
        #: development stand-in, which is refused unless QUALIFICATION_MODE or DEVELOPMENT_LOGIN is on
        "LOGIN_ADAPTER": None,
        #: allow the development stand-in login (not DigiD) outside qualification mode: development machines only
        "DEVELOPMENT_LOGIN": False,
        "DEV_LOGIN_PERSONS": [],
        # --- DigiD over SAML (LOGIN_ADAPTER=digid-saml; oauth/login_saml.py)
        "SAML_SP_ENTITY_ID": None,
        "SAML_SP_BASE_URL": None,
        "SAML_SP_KEY": None,
        "SAML_SP_CERT": None,
        "SAML_IDP_METADATA": None,
        "SAML_TLS_CERT": None,
        "SAML_TLS_KEY": None,
        "SAML_TLS_CA": None,
        "SAML_MIN_LEVEL": "substantieel",
        "SAML_TIMEOUT": 10,
        "SAML_CLOCK_SKEW": 60,
        # --- an OpenID Connect broker in front of DigiD (LOGIN_ADAPTER=oidc; oauth/login_oidc.py)
        "OIDC_ISSUER": None,
        "OIDC_CLIENT_ID": None,
        "OIDC_REDIRECT_URI": None,
        "OIDC_CLIENT_AUTH": "private_key_jwt",
        "OIDC_PRIVATE_KEY": None,
        "OIDC_TLS_CERT": None,
        "OIDC_TLS_KEY": None,
        "OIDC_CA_BUNDLE": None,
        "OIDC_SCOPE": "openid",
        "OIDC_BSN_CLAIM": "bsn",
        "OIDC_ACR_LEVELS": {},
        "OIDC_ACR_VALUES": None,
        "OIDC_MIN_LEVEL": "substantieel",
        "OIDC_TIMEOUT": 10,
        "OIDC_CLOCK_SKEW": 60,
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
        #: consent page: a Dutch description per gegevensdienst id, merged over DEFAULT_DESCRIPTIONS
        "GEGEVENSDIENST_BESCHRIJVINGEN": {},
        # --- qualification / test mode: Nictiz QualificationTokens.json tokens, PUT test data, $purge
        "QUALIFICATION_MODE": False,
        #: the Nictiz TestScripts repository for client qualification (default: $DVZA_SHARED_DIR/conformance/…)
        "QUALIFICATION_SCRIPTS_DIR": None,
        # --- secrets
        "SECRET_KEY": None,
        "BSN_HMAC_KEY": None,
        #: Fernet key (or list, current first) for the staff copy of the BSN (dvza.models.PatientBsn)
        "BSN_ENCRYPTION_KEY": None,
        # --- return queue: consumer name -> SHA-256 of its API key (``dvza queue apikey NAME``)
        "QUEUE_API_KEYS": {},
        # --- the source API (dvza/source): the hospital's own systems feed Module 1 data and patient identities
        "SOURCE_BASE_PATH": "/source/fhir",
        #: source name -> SHA-256 fingerprint of its client certificate (``dvza source certificate FILE``)
        "SOURCE_CERTIFICATES": {},
        #: source name -> SHA-256 of its API key (``dvza source apikey NAME``); development only, needs the switch
        "SOURCE_API_KEYS": {},
        "SOURCE_API_KEYS_ALLOWED": False,
        #: a transaction, replace or resource body (parsed whole); an NDJSON line ($import streams the rest)
        "SOURCE_MAX_BODY_BYTES": 50 * 1024 * 1024,
        "SOURCE_MAX_BUNDLE_ENTRIES": 5000,
        # --- the queue page for hospital staff: name -> Werkzeug password hash (``dvza queue user NAME``)
        "HOSPITAL_USERS": {},
        # --- browser sessions (dvza/sessions.py): server-side, ended by logout, idle timeout and absolute lifetime
        "SESSION_IDLE_TIMEOUT": 15 * 60,
        "SESSION_ABSOLUTE_LIFETIME": 8 * 60 * 60,
        # --- staff sign-in throttling (dvza/returnqueue/signin.py): failed attempts per account and per address
        "SIGN_IN_LIMIT_PER_ACCOUNT": "5 per 15 minutes",
        "SIGN_IN_LIMIT_PER_ADDRESS": "20 per 15 minutes",
        #: where the counters live: empty = the app's database; ``redis://host:6379/0`` with the ``redis`` extra
        "RATE_LIMIT_STORAGE_URI": None,
        # --- operations: /readyz details for callers with this key (SHA-256 hex of it), /metrics on the internal bind
        "READYZ_KEY_SHA256": None,
        #: HSTS on answers over TLS that the app ends itself (a proxy sets its own); 0 switches it off
        "HSTS_MAX_AGE": 365 * 24 * 60 * 60,
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
    if not app_config["LOGIN_ADAPTER"]:
        app_config["LOGIN_ADAPTER"] = "development"  # validate() allowed it: qualification or development mode


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
    if not config.get("BSN_ENCRYPTION_KEY"):
        from cryptography.fernet import Fernet

        config["BSN_ENCRYPTION_KEY"] = _instance_secret(Path(instance_path) / "bsn_encryption_key",
                                                        lambda: Fernet.generate_key().decode("ascii"))


def _instance_secret(path: Path, make: t.Callable[[], str]) -> str:
    """A development secret kept in the instance folder (created once, mode 0600)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def descriptions(config: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The consent page's gegevensdienst descriptions: the defaults with the configured ones over them."""
    merged = DEFAULT_DESCRIPTIONS | {str(k): v for k, v in config["GEGEVENSDIENST_BESCHRIJVINGEN"].items()}
    return {k: v for k, v in merged.items() if v}


def branding(config: t.Mapping[str, t.Any]) -> Branding:
    """The house style of the person-facing pages from ``AANBIEDER_WEERGAVENAAM`` and ``BRAND_*``."""
    return Branding(name=config["AANBIEDER_WEERGAVENAAM"], logo_file=config["BRAND_LOGO"] or None,
                    colours=dict(config["BRAND_COLOURS"]), contact_url=config["BRAND_CONTACT_URL"] or None,
                    privacy_url=config["BRAND_PRIVACY_URL"] or None)


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
    _positive_integers(config, "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_BODY_BYTES", "MAX_BUNDLE_ENTRIES",
                       "MAX_ATTACHMENT_BYTES", "MAX_CONTENT_LENGTH")
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
    descriptions = config["GEGEVENSDIENST_BESCHRIJVINGEN"]
    if not isinstance(descriptions, dict) or not all(isinstance(v, str) for v in descriptions.values()):
        raise ConfigError("GEGEVENSDIENST_BESCHRIJVINGEN must map gegevensdienst ids to Dutch descriptions")
    if not isinstance(config["BRAND_COLOURS"], dict):
        raise ConfigError("BRAND_COLOURS must map colour names to colours, e.g. {\"accent\": \"#0b4f8a\"}")
    try:
        from .identity import BsnCipher
        from .identity import encryption_keys

        keys = encryption_keys(config["BSN_ENCRYPTION_KEY"])
        BsnCipher(keys)
    except ValueError as exc:
        raise ConfigError("BSN_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes) or a list "
                          "of them, current key first") from exc
    if config["BSN_HMAC_KEY"] in keys:
        raise ConfigError("BSN_ENCRYPTION_KEY must differ from BSN_HMAC_KEY")
    try:
        branding(config).check()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(str(config["TIMEZONE"]))
    except (ValueError, KeyError, OSError) as exc:
        raise ConfigError(f"TIMEZONE {config['TIMEZONE']!r} is not a known time zone (e.g. Europe/Amsterdam)") from exc
    if config["LOG_FORMAT"] not in ("json", "console"):
        raise ConfigError("LOG_FORMAT must be json or console")
    _source(config)
    keys = config["QUEUE_API_KEYS"]
    if not isinstance(keys, dict) or any(len(str(v)) != 64 for v in keys.values()):
        raise ConfigError("QUEUE_API_KEYS must map consumer names to SHA-256 hex digests of their keys")
    users = config["HOSPITAL_USERS"]
    if not isinstance(users, dict) or any(not str(v).startswith(("scrypt:", "pbkdf2:")) for v in users.values()):
        raise ConfigError("HOSPITAL_USERS must map names to Werkzeug password hashes (dvza queue user NAME)")
    if not isinstance(config["TRUSTED_PROXIES"], list):
        raise ConfigError("TRUSTED_PROXIES must be a JSON list of addresses or networks")
    _need_seconds(config, "DB_PING_AFTER_IDLE", 0, 3600)
    if config["SQLITE_SYNCHRONOUS"] not in ("NORMAL", "FULL"):
        raise ConfigError("SQLITE_SYNCHRONOUS must be NORMAL or FULL")
    if not str(config["DATABASE_URL"]).startswith(("sqlite", "postgresql")):
        raise ConfigError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
    for key in ("SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_LIFETIME"):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < 60:
            raise ConfigError(f"{key} must be a number of seconds, at least 60")
    if config["SESSION_IDLE_TIMEOUT"] > config["SESSION_ABSOLUTE_LIFETIME"]:
        raise ConfigError("SESSION_IDLE_TIMEOUT may not exceed SESSION_ABSOLUTE_LIFETIME")
    for key in ("SIGN_IN_LIMIT_PER_ACCOUNT", "SIGN_IN_LIMIT_PER_ADDRESS"):
        _rate_limit(key, config[key])
    digest = config["READYZ_KEY_SHA256"]
    if digest is not None and (not isinstance(digest, str) or len(digest) != 64):
        raise ConfigError("READYZ_KEY_SHA256 must be the SHA-256 hex digest of the readiness key")
    if not isinstance(config["HSTS_MAX_AGE"], int) or config["HSTS_MAX_AGE"] < 0:
        raise ConfigError("HSTS_MAX_AGE must be a number of seconds (0: no HSTS header)")
    _login(config)
    _validate_login(config)


def _positive_integers(config: t.Mapping[str, t.Any], *keys: str) -> None:
    """Sizes and counts: whole numbers above zero (``True`` is an int in Python, not a size)."""
    for key in keys:
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer")


def _source(config: t.Mapping[str, t.Any]) -> None:
    """The source API (``dvza.source``): its own base path, sources by certificate, API keys only when switched on."""
    from .source.auth import check_config

    base, fhir = config["SOURCE_BASE_PATH"], config["FHIR_BASE_PATH"].rstrip("/")
    if not isinstance(base, str) or not base.startswith("/") or base.rstrip("/") in ("", fhir) or \
            (fhir and base.rstrip("/").startswith(fhir + "/")):
        raise ConfigError("SOURCE_BASE_PATH must start with '/' and lie outside FHIR_BASE_PATH (e.g. /source/fhir)")
    _positive_integers(config, "SOURCE_MAX_BODY_BYTES", "SOURCE_MAX_BUNDLE_ENTRIES")
    problem = check_config(config)
    if problem:
        raise ConfigError(problem)


def _rate_limit(key: str, value: t.Any) -> None:
    from limits import parse_many

    try:
        if not isinstance(value, str) or not parse_many(value):
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"{key} must be a rate limit such as '5 per 15 minutes'") from None


def _login(config: t.Mapping[str, t.Any]) -> None:
    """Secure by default: the development stand-in login (a BSN typed into a page) only when asked for.

    A real login (DigiD through SAML or an OIDC broker) is required unless ``QUALIFICATION_MODE`` (the
    Nictiz qualification set-up) or ``DEVELOPMENT_LOGIN`` (a developer's machine) is switched on.
    """
    if not isinstance(config["DEVELOPMENT_LOGIN"], bool):
        raise ConfigError("DEVELOPMENT_LOGIN must be true or false")
    adapter = config["LOGIN_ADAPTER"]
    if adapter is not None and not isinstance(adapter, str):
        raise ConfigError("LOGIN_ADAPTER must be a name such as digid-saml, oidc or package.module:factory")
    allowed = bool(config["QUALIFICATION_MODE"]) or config["DEVELOPMENT_LOGIN"]
    names = [part.strip() for part in (adapter or "").split(",") if part.strip()]
    if (not names or "development" in names) and not allowed:
        raise ConfigError(
            "LOGIN_ADAPTER must name a real login (digid-saml, oidc or package.module:factory): "
            + ("it is not set" if not names else "'development' is the stand-in login, not DigiD")
            + ". The development login is only available with DVZA_DEVELOPMENT_LOGIN=true (development machines) "
            "or DVZA_QUALIFICATION_MODE=true"
        )


#: the built-in login adapters (``LOGIN_ADAPTER``); ``package.module:factory`` names any other
LOGIN_ADAPTERS = ("development", "digid-saml", "oidc")
LEVELS = ("basis", "midden", "substantieel", "hoog")


def login_adapter_names(config: t.Mapping[str, t.Any]) -> list[str]:
    """``LOGIN_ADAPTER`` as a list: one name, or several separated by commas (the person chooses;
    meant for development, e.g. ``development,digid-saml`` in ``make run``)."""
    value = config["LOGIN_ADAPTER"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("LOGIN_ADAPTER must be development, digid-saml, oidc or package.module:factory")
    return [part.strip() for part in value.split(",") if part.strip()]


def _validate_login(config: t.Mapping[str, t.Any]) -> None:
    if not config["LOGIN_ADAPTER"]:
        return  # unset: the development login, when _login allowed it
    names = login_adapter_names(config)
    for name in names:
        if name not in LOGIN_ADAPTERS and not re.fullmatch(r"[\w.]+:\w+", name):
            raise ConfigError(f"LOGIN_ADAPTER: {name!r} is not development, digid-saml, oidc or package.module:factory")
    if len(set(names)) != len(names):
        raise ConfigError("LOGIN_ADAPTER names an adapter twice")
    if "digid-saml" in names:
        _validate_saml(config)
    if "oidc" in names:
        _validate_oidc(config)


def _need_file(config: t.Mapping[str, t.Any], key: str, *, required: bool = True) -> None:
    value = config[key]
    if value in (None, ""):
        if required:
            raise ConfigError(f"{key} is required for this LOGIN_ADAPTER (a path to a PEM or XML file)")
        return
    if not isinstance(value, str) or not Path(value).is_file():
        raise ConfigError(f"{key} must be the path of a readable file; {value!r} is not")


def _need_https(config: t.Mapping[str, t.Any], key: str) -> None:
    value = config[key]
    if not isinstance(value, str) or not value.startswith("https://") or len(value) <= len("https://"):
        raise ConfigError(f"{key} must be an https:// URL")


def _need_seconds(config: t.Mapping[str, t.Any], key: str, low: int, high: int) -> None:
    value = config[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{key} must be a number of seconds between {low} and {high}")


def _validate_saml(config: t.Mapping[str, t.Any]) -> None:
    if not isinstance(config["SAML_SP_ENTITY_ID"], str) or not config["SAML_SP_ENTITY_ID"].strip():
        raise ConfigError("SAML_SP_ENTITY_ID is required for LOGIN_ADAPTER=digid-saml (our entity ID at Logius)")
    _need_https(config, "SAML_SP_BASE_URL")
    for key in ("SAML_SP_KEY", "SAML_SP_CERT", "SAML_IDP_METADATA", "SAML_TLS_CERT", "SAML_TLS_KEY"):
        _need_file(config, key)
    _need_file(config, "SAML_TLS_CA", required=False)
    if config["SAML_MIN_LEVEL"] not in LEVELS:
        raise ConfigError(f"SAML_MIN_LEVEL must be one of {', '.join(LEVELS)}")
    _need_seconds(config, "SAML_TIMEOUT", 1, 60)
    _need_seconds(config, "SAML_CLOCK_SKEW", 0, 300)


def _validate_oidc(config: t.Mapping[str, t.Any]) -> None:
    _need_https(config, "OIDC_ISSUER")
    _need_https(config, "OIDC_REDIRECT_URI")
    if not isinstance(config["OIDC_CLIENT_ID"], str) or not config["OIDC_CLIENT_ID"].strip():
        raise ConfigError("OIDC_CLIENT_ID is required for LOGIN_ADAPTER=oidc")
    method = config["OIDC_CLIENT_AUTH"]
    if method == "private_key_jwt":
        _need_file(config, "OIDC_PRIVATE_KEY")
    elif method == "tls_client_auth":
        _need_file(config, "OIDC_TLS_CERT")
        _need_file(config, "OIDC_TLS_KEY")
    else:
        raise ConfigError("OIDC_CLIENT_AUTH must be private_key_jwt or tls_client_auth")
    _need_file(config, "OIDC_CA_BUNDLE", required=False)
    if not isinstance(config["OIDC_SCOPE"], str) or "openid" not in config["OIDC_SCOPE"].split():
        raise ConfigError("OIDC_SCOPE must contain openid")
    if not isinstance(config["OIDC_BSN_CLAIM"], str) or not config["OIDC_BSN_CLAIM"]:
        raise ConfigError("OIDC_BSN_CLAIM must name the ID token claim that holds the BSN")
    levels = config["OIDC_ACR_LEVELS"]
    if not isinstance(levels, dict) or any(v not in LEVELS for v in levels.values()):
        raise ConfigError(f"OIDC_ACR_LEVELS must map acr values to levels ({', '.join(LEVELS)})")
    if config["OIDC_ACR_VALUES"] is not None and not isinstance(config["OIDC_ACR_VALUES"], str):
        raise ConfigError("OIDC_ACR_VALUES must be a space-separated string of acr values")
    if config["OIDC_MIN_LEVEL"] not in LEVELS:
        raise ConfigError(f"OIDC_MIN_LEVEL must be one of {', '.join(LEVELS)}")
    _need_seconds(config, "OIDC_TIMEOUT", 1, 60)
    _need_seconds(config, "OIDC_CLOCK_SKEW", 0, 300)
