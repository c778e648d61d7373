"""``python -m doctor``: see ``doctor.cli``."""

from doctor.cli import main

raise SystemExit(main())
