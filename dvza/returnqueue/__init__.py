"""The return queue (Module 2): what patients send from their PGO, quarantined until the hospital accepts it.

* :mod:`.models` — the queue table; :mod:`.queue` — :class:`~.queue.ReturnQueue` (enqueue in the resource
  server's transaction, claim with leases, accept/reject, every action audit-logged);
* :mod:`.api` — the JSON API for hospital systems (``/queue/api``); :mod:`.pages` — the staff pages
  (``/ziekenhuis``); :mod:`.cli` — ``dvza queue``.
"""
