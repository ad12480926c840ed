"""A PGO simulator: the other side of the MedMij flow, for development and demonstrations.

It plays a PGO server (MedMij "Dienstverlener Persoon"): it knows the network from the ZAL and GNL,
sends the person's browser to an aanbieder's authorization endpoint, swaps the code for a token
over mutual TLS with its own client certificate (RFC 8705), fetches BgZ and documents, and sends a
blood-pressure measurement back (Zelfmetingen, gegevensdienst 53). ``create_pgo_app`` is the web
app; ``dvza pgo fetch|send`` the same from the command line.
"""

from .app import create_pgo_app

__all__ = ["create_pgo_app"]
