"""The local DigiD-like SAML IdP in the development network (``make run``, ``tests/e2e``).

The DVZA of the development network offers two ways to log in (``LOGIN_ADAPTER=development,digid-saml``):
the development stand-in and DigiD over SAML against :mod:`dvza.devtools.digid_idp`, so a vendor sees
the real redirect dance — signed AuthnRequest, artifact, SOAP backchannel with mutual TLS — on one
machine. This module holds the glue so :mod:`dvza.devtools.devnet` only calls it.
"""

from __future__ import annotations

import typing as t

from .digid_idp import DigidIdp

if t.TYPE_CHECKING:
    from .devnet import DevNetwork


def digid_for(net: DevNetwork) -> DigidIdp:
    return DigidIdp(net.root / "digid", net.pki, front_port=net.digid_port, back_port=net.digid_back_port,
                    sp_tls_hostname=net.host, persons=net.dev_persons())


def saml_env(net: DevNetwork) -> dict[str, str]:
    """The DVZA's ``DVZA_LOGIN_ADAPTER`` and ``DVZA_SAML_*`` for the local IdP."""
    idp = digid_for(net)
    cert, key = idp.sp_signing_files()
    return {
        "DVZA_LOGIN_ADAPTER": "development,digid-saml",
        "DVZA_SAML_SP_ENTITY_ID": f"{net.front_url}/oauth/saml/metadata",
        "DVZA_SAML_SP_BASE_URL": net.front_url,
        "DVZA_SAML_SP_KEY": str(key), "DVZA_SAML_SP_CERT": str(cert),
        "DVZA_SAML_IDP_METADATA": str(idp.idp_metadata),
        # the backchannel is mutual TLS: the DVZA node's client certificate, the IdP's from the same CA
        "DVZA_SAML_TLS_CERT": str(net.pki.client_cert(net.host)),
        "DVZA_SAML_TLS_KEY": str(net.pki.client_key(net.host)),
        "DVZA_SAML_TLS_CA": str(net.pki.ca_cert),
    }


def prepare(net: DevNetwork) -> None:
    """Keys, certificates and both metadata files (after the PKI exists)."""
    from ..authorization import saml_settings
    from ..config import defaults

    idp = digid_for(net)
    config = defaults(str(net.root)) | {k.removeprefix("DVZA_"): v for k, v in saml_env(net).items()}
    idp.prepare(saml_settings(config))


def start(net: DevNetwork) -> DigidIdp:
    idp = digid_for(net)
    idp.start()
    return idp
