"""Every table of the product, by the package that owns it: the resource server's (``fhir_api.models``),
the authorization server's (``oauth.models``), the application's (``dvza.models``), the return
queue's (``dvza.returnqueue.models``) and the qualification sessions' (``dvza.qualification.models``)."""

from __future__ import annotations

import typing as t


def metadatas() -> list[t.Any]:
    """The SQLAlchemy ``MetaData`` of each package, in creation order."""
    from fhir_api.models import FhirBase
    from oauth.models import OAuthBase

    from .models import AppBase
    from .qualification import models as qualification_models
    from .returnqueue import models as queue_models

    assert queue_models.QueueItem.__table__.metadata is AppBase.metadata
    assert qualification_models.QualificationSession.__table__.metadata is AppBase.metadata
    return [FhirBase.metadata, OAuthBase.metadata, AppBase.metadata]
