"""Every table of the product, by the package that owns it: the resource server's (``fhir_api.models``),
the authorization server's (``oauth.models``), the application's (``dvza.models``, the browser sessions
of ``dvza.sessions``, the rate-limit counters of ``dvza.ratelimit``), the return queue's
(``dvza.returnqueue.models``), the source API's (``dvza.source.models``: resource owners, import jobs) and the
qualification sessions' (``dvza.qualification.models``)."""

from __future__ import annotations

import typing as t


def metadatas() -> list[t.Any]:
    """The SQLAlchemy ``MetaData`` of each package, in creation order."""
    from fhir_api.models import FhirBase
    from oauth.models import OAuthBase

    from . import ratelimit
    from . import sessions
    from .models import AppBase
    from .qualification import models as qualification_models
    from .returnqueue import models as queue_models
    from .source import models as source_models

    for table in (queue_models.QueueItem, sessions.BrowserSession, ratelimit.RateLimitCounter,
                  qualification_models.QualificationSession, source_models.ResourceOwner, source_models.ImportJob,
                  source_models.ImportRefusal):
        assert table.__table__.metadata is AppBase.metadata
    return [FhirBase.metadata, OAuthBase.metadata, AppBase.metadata]
