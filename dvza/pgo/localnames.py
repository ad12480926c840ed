"""``*.localhost`` names resolve to the loopback address, in this process (development only).

RFC 6761 §6.3: "Name resolution APIs and libraries SHOULD recognize localhost names as special and
SHOULD always return the IP loopback address for address queries". Chromium does; glibc without
``nss-myhostname`` does not. The development network gives the DVZA and the PGO simulator their
own names (``dvza.localhost``, ``pgo.localhost``) so that hostnames, certificates and MedMij lists
look like production; its Python clients call :func:`install` so they can reach them.
"""

from __future__ import annotations

import socket
import typing as t

_original: t.Callable[..., t.Any] | None = None


def is_localhost_name(host: t.Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and (host.lower().rstrip(".") == "localhost"
                                      or host.lower().rstrip(".").endswith(".localhost"))


def install() -> None:
    """Wrap :func:`socket.getaddrinfo` once; other names resolve as before."""
    global _original
    if _original is not None:
        return
    _original = original = socket.getaddrinfo

    def getaddrinfo(host: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if is_localhost_name(host):
            return original("127.0.0.1", *args, **kwargs)
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
