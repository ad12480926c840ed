"""medmij-dvza: the application — configuration, database, audit log, wiring of the
authorization server (``oauth``), the resource server (``fhir_api``) and the MedMij lists."""

from __future__ import annotations

import os
import typing as t

from flask import Flask

__version__ = "0.1.0"


def create_app(config: t.Mapping[str, t.Any] | None = None, *, check_schema: bool = True) -> Flask:
    """Application factory (Flask tutorial pattern): defaults → ``DVZA_*`` env → ``config``.

    The database is brought to the code's schema (``DB_AUTO_UPGRADE``), or, with that off, must already be
    there; ``check_schema=False`` skips both (the ``dvza db`` commands, which are how it gets there)."""
    from fhir_api import api as fhir
    from fhir_api.search import values as search_values
    from fhir_api.services import FhirServices
    from fhir_api.services import Limits

    from . import authorization
    from . import cli
    from . import config as config_module
    from . import db
    from . import health
    from . import lists
    from . import logging as dvza_logging
    from . import metrics
    from . import migrate
    from . import pages
    from . import qualification
    from . import security
    from . import sessions
    from .access import TokenAccessResolver
    from .audit import AuditLog
    from .flask_app import DvzaFlask
    from .returnqueue import api as queue_api
    from .returnqueue import pages as hospital
    from .returnqueue.queue import ReturnQueue
    from .source import api as source_api
    from .source.writer import SourceSettings

    instance_path = os.environ.get("DVZA_INSTANCE_PATH") or (config or {}).get("INSTANCE_PATH")
    app = DvzaFlask(__name__, instance_path=os.path.abspath(instance_path) if instance_path else None,
                    instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    config_module.load(app.config, app.instance_path, config)
    dvza_logging.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"], app.config["AUDIT_LOG_FILE"])
    search_values.set_default_zone(app.config["TIMEZONE"])

    database = db.Database(app.config["DATABASE_URL"], echo=app.config["DATABASE_ECHO"],
                           sqlite_synchronous=app.config["SQLITE_SYNCHRONOUS"],
                           ping_after_idle=app.config["DB_PING_AFTER_IDLE"])
    db.init_app(app, database)
    if not check_schema:
        pass
    elif app.config["DB_AUTO_UPGRADE"]:
        migrate.upgrade(database.engine)
    else:
        migrate.require_current(database.engine)
    metrics.init_app(app)
    security.init_app(app)
    sessions.init_app(app, database)

    audit = AuditLog(database, bsn_key=app.config["BSN_HMAC_KEY"])
    app.extensions["dvza.audit"] = audit
    source_settings = SourceSettings.from_config(app.config)
    return_queue = ReturnQueue(database, audit, source_settings=source_settings)
    resolver = TokenAccessResolver(
        database, qualification_mode=app.config["QUALIFICATION_MODE"],
        trusted_proxies=app.config["TRUSTED_PROXIES"], client_cert_header=app.config["CLIENT_CERT_HEADER"],
    )
    fhir_services = FhirServices(
        session=database.session, connection=database.connection, access=resolver, audit=audit,
        gegevensdiensten=app.config["GEGEVENSDIENSTEN"], public_base_url=app.config["PUBLIC_BASE_URL"],
        default_count=app.config["DEFAULT_PAGE_SIZE"], max_count=app.config["MAX_PAGE_SIZE"],
        limits=Limits(app.config["MAX_BODY_BYTES"], app.config["MAX_BUNDLE_ENTRIES"],
                      app.config["MAX_ATTACHMENT_BYTES"]),
        test_writes=app.config["QUALIFICATION_MODE"], software_version=__version__, submissions=return_queue,
    )
    fhir.init_app(app, fhir_services, url_prefix=app.config["FHIR_BASE_PATH"])
    lists.init_app(app)
    authorization.init_app(app, database, audit)
    queue_api.init_app(app, return_queue)
    # the hospital's own systems; a merge of two records moves their return-queue items along
    source_api.init_app(app, database, audit, on_merge=(return_queue.reassign_patient,))
    health.init_app(app)
    hospital.init_app(app)
    pages.init_app(app)
    qualification.init_app(app)
    if app.config["PROXY_FIX"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]
    cli.init_app(app)
    return app
