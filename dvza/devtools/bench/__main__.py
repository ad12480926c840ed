"""``python -m dvza.devtools.bench``."""

from . import main

raise SystemExit(main())
