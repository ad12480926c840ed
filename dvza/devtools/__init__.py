"""Development-only tooling — never needed to run a DVZA in production.

* :mod:`.testdata` — load the Nictiz fixtures and qualification tokens (``dvza testdata``);
* :mod:`.devnet` — the development network of ``make run`` (``dvza demo``): PKI, demo lists, TLS listeners,
  the PGO simulator;
* :mod:`.bench` — ``make bench``.
"""
