"""The plan's data source, whatever it is: native files, a REDCap export or ADaM datasets."""

from __future__ import annotations

import pandas as pd

from analysis.plan import LoadedPlan
from analysis.sources.adam import read_adam
from analysis.sources.files import RawTable, read_measurements, read_participants
from analysis.sources.redcap import read_redcap


def read_sources(loaded: LoadedPlan) -> tuple[RawTable, pd.DataFrame, RawTable, pd.DataFrame]:
    """Read the plan's data source (native files, a REDCap export or ADaM files).

    Returns ``(participants_raw, participants, measurements_raw, measurements)`` exactly as
    :func:`read_participants` and :func:`read_measurements` do, whatever the source, so validation
    and derivation are shared.
    """
    data = loaded.plan.data
    if data.redcap is not None:
        return read_redcap(loaded)
    if data.adam is not None:
        return read_adam(loaded)
    participants_raw, participants = read_participants(loaded)
    measurements_raw, measurements = read_measurements(loaded)
    return participants_raw, participants, measurements_raw, measurements
