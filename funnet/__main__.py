"""``python -m funnet``: the same as the ``funnet`` command."""

from funnet.cli import main

raise SystemExit(main())
