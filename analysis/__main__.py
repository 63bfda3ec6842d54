"""``python -m analysis`` is the same as the ``trialkit`` command."""

from analysis.cli import main

main()
