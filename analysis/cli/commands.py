"""Imports every command module so that each registers its command on the shared app."""

from analysis.cli import run  # noqa: F401
from analysis.cli import grant  # noqa: F401
from analysis.cli import meta  # noqa: F401
from analysis.cli import escalc  # noqa: F401
from analysis.cli import redcap  # noqa: F401
from analysis.cli import replicate  # noqa: F401
