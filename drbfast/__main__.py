"""``python -m drbfast``: the same as the ``drbfast`` command."""

from .cli import main

raise SystemExit(main())
