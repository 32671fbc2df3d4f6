"""``python -m metronome.validation`` is the ``metronome`` command."""

import sys

from .cli import main

sys.exit(main())
