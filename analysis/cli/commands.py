"""Imports every command module so that each registers its command on the shared app."""

from analysis.cli import (
    escalc,  # noqa: F401
    grant,  # noqa: F401
    init,  # noqa: F401
    meta,  # noqa: F401
    mmrm,  # noqa: F401
    redcap,  # noqa: F401
    replicate,  # noqa: F401
    run,  # noqa: F401
)
