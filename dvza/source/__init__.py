"""The source side of the DVZA: how the hospital's own systems (EHR, integration engine) feed Module 1 data and
patient identities in, keep them current and take them out (issue 16). Production code.

* :mod:`.writer` — :class:`~.writer.SourceWriter`, the one write path for patient data (the source API, the bulk
  import, ``dvza testdata load`` and the return queue's *accept* all use it): validation, content rules,
  compartment and index (``fhir_api.store``), idempotent upserts, one system of record per resource, BSN
  identity links, merge and unlink;
* :mod:`.bundles` — transactions and the full replace of one patient's record for one gegevensdienst;
* :mod:`.bulk` — streaming, restartable NDJSON import;
* :mod:`.auth` — who may call: sources by client certificate (mutual TLS), API keys for development;
* :mod:`.api` — the source API (``/source/fhir``); :mod:`.cli` — ``dvza source``;
* :mod:`.models` — the tables (resource ownership, import jobs).
"""
