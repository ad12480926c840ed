"""Development PKI tooling: a root CA, the DVZA server certificate and PGO client certificates.

See :mod:`certs.pki` for the API (``ensure_dev_pki``, ``x5t_s256``) and :mod:`certs.cli` for
``python -m certs`` / ``certs_group``.
"""

from certs.pki import DevPki
from certs.pki import ensure_dev_pki
from certs.pki import x5t_s256

__all__ = ["DevPki", "ensure_dev_pki", "x5t_s256"]
