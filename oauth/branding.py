"""The aanbieder's house style on the person-facing pages: name, logo, colours, contact and privacy links.

All of it is configuration (the app fills :class:`Branding` from ``AANBIEDER_WEERGAVENAAM`` and
``BRAND_*``). It works under a strict Content-Security-Policy (``default-src 'self'``, no inline
styles): the colours are served as a small stylesheet of CSS custom properties
(``/oauth/huisstijl.css``) that the base layout links after ``medmij.css``, and the logo is served
from its configured file (``/oauth/huisstijl/logo``), never from another host.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

#: the colours a hospital may set, as CSS custom properties of medmij.css
COLOUR_NAMES = ("accent", "accent-dark", "header-background", "header-text", "link")
COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp"}


class BrandingError(ValueError):
    """A branding setting that cannot work; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Branding:
    #: the name people know the hospital by (``AANBIEDER_WEERGAVENAAM``)
    name: str
    #: a logo file on this server (SVG, PNG, JPEG or WebP)
    logo_file: str | None = None
    #: colour name (:data:`COLOUR_NAMES`) → ``#rgb``/``#rrggbb``
    colours: t.Mapping[str, str] = field(default_factory=dict)
    contact_url: str | None = None
    privacy_url: str | None = None

    @property
    def logo_type(self) -> str | None:
        return LOGO_TYPES.get(Path(self.logo_file).suffix.lower()) if self.logo_file else None

    def stylesheet(self) -> str:
        """``:root { --accent: #…; … }`` — only validated colour values, so nothing can be injected."""
        rules = "".join(f"  --{name}: {self.colours[name]};\n" for name in COLOUR_NAMES if name in self.colours)
        return f":root {{\n{rules}}}\n" if rules else "/* no house colours configured */\n"

    def check(self) -> None:
        """Raise :class:`BrandingError` for settings that would break a page or its CSP."""
        for name, value in self.colours.items():
            if name not in COLOUR_NAMES:
                raise BrandingError(f"BRAND_COLOURS: unknown colour {name!r} (known: {', '.join(COLOUR_NAMES)})")
            if not isinstance(value, str) or not COLOUR.match(value):
                raise BrandingError(f"BRAND_COLOURS[{name!r}] must be a colour like #0b4f8a, not {value!r}")
        if self.logo_file:
            if self.logo_type is None:
                raise BrandingError(f"BRAND_LOGO must be an {', '.join(sorted(LOGO_TYPES))} file")
            if not Path(self.logo_file).is_file():
                raise BrandingError(f"BRAND_LOGO: {self.logo_file} does not exist")
        for key, url in (("BRAND_CONTACT_URL", self.contact_url), ("BRAND_PRIVACY_URL", self.privacy_url)):
            if url and not re.match(r"^(https://[^\s\"'<>]+|mailto:[^\s\"'<>]+|tel:\+?[0-9 -]+)$", url):
                raise BrandingError(f"{key} must be an https://, mailto: or tel: address")
