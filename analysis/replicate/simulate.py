"""A seeded generator of synthetic trials shaped as a plan declares (``trialkit simulate``).

Everything it draws is labelled SIMULATED by the plan that drives it. The generator is generic: it
reads the plan's arms, visits, outcomes (range, rounding) and its ``simulation`` section; nothing is
specific to one study.

Model, per participant *i* and outcome, at follow-up visit *k* with week :math:`w_k` (last week
:math:`W`)::

    baseline_i  ~ N(baseline_mean, baseline_sd^2)
    change_ik   = (w_k / W) * mu_arm + change_sd * (sqrt(rho) * u_i + sqrt(1 - rho) * e_ik)
    value_ik    = clip(round(baseline_i + change_ik, decimals), range)

with ``u_i, e_ik ~ N(0, 1)`` independent and ``rho`` the within-participant correlation of
changes. Participants are allocated 1:1 in randomly permuted blocks of 4. A fraction ``dropout``
leave after a random visit (withdrawn or lost to follow-up, with a reason) and have no later rows; a
fraction ``missing_value_rate`` of the remaining follow-up values are recorded as empty cells.

A trial is drawn :data:`CHUNK_PARTICIPANTS` participants at a time (:func:`simulate_chunks`), each
chunk from its own seeded stream, so memory is bounded whatever the size; a trial of up to that many
participants is a single chunk. :func:`write_simulated_trial` writes CSV, or Parquet as a directory
of part files that each hold whole participants.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.errors import PlanError
from analysis.core.limits import check_memory
from analysis.plan import LoadedPlan, Plan

SEX_CODES = (["F", "M", "U"], [0.54, 0.44, 0.02])
RACE_CODES = (
    ["White", "Black", "Asian", "AIAN", "NHPI", "Multiple", "Unknown"],
    [0.62, 0.14, 0.12, 0.02, 0.01, 0.05, 0.04],
)
ETHNICITY_CODES = (["NotHispanic", "Hispanic", "Unknown"], [0.80, 0.16, 0.04])
WITHDRAWAL_REASONS = ["moved away", "time constraints", "adverse event", "no longer interested"]
LOSS_REASONS = ["did not attend follow-up", "no response to contact"]

# Participants drawn, held and written at a time: a chunk's arrays take about 200 MB whatever the
# trial's size. A trial of up to this many participants is one chunk, drawn as it always was.
CHUNK_PARTICIPANTS = 100_000
# Memory of one measurement row held as text in pandas (four Python strings and the frame's index).
TEXT_ROW_BYTES = 250.0


@dataclass(frozen=True)
class SimulatedTrial:
    """The two tables of a synthetic trial, as they are written to CSV."""

    participants: pd.DataFrame
    measurements: pd.DataFrame


def _chunk_generator(seed: int, index: int) -> np.random.Generator:
    """The generator of chunk ``index``: ``default_rng(seed)`` for the first chunk, so a trial of up
    to :data:`CHUNK_PARTICIPANTS` participants is drawn exactly as it always was, and an independent
    stream (``SeedSequence(seed, spawn_key=(index,))``) for each later one."""
    if index == 0:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _draw_chunk(plan: Plan, rng: np.random.Generator, first: int, n: int, *, as_text: bool) -> SimulatedTrial:
    """Participants ``first + 1 .. first + n``, drawn whole (every row of a participant is here)."""
    sim = plan.simulation
    numbers = np.arange(first + 1, first + n + 1)
    ids = np.char.add("SIM", np.char.zfill(numbers.astype(str), 4)).astype(object)
    blocks = np.concatenate([rng.permutation([0, 0, 1, 1]) for _ in range((n + 3) // 4)])[:n]
    arm_is_treatment = blocks.astype(bool)
    arm_code = np.where(arm_is_treatment, plan.arms.treatment.codes[0], plan.arms.control.codes[0])

    days = np.sort(rng.integers(0, sim.enrollment_weeks * 7, n))
    enrolled = np.datetime_as_string(np.datetime64(sim.first_enrollment, "D") + days, unit="D")
    followup = plan.visits.followup
    dropped = rng.random(n) < sim.dropout
    last_visit = np.where(dropped, rng.integers(0, len(followup), n), len(followup))
    lost = rng.random(n) < 0.5
    disposition = np.where(~dropped, "completed", np.where(lost, "lost_to_follow_up", "withdrawn"))
    reasons = np.where(
        ~dropped,
        "",
        np.where(lost, rng.choice(LOSS_REASONS, n), rng.choice(WITHDRAWAL_REASONS, n)),
    )
    participants = pd.DataFrame(
        {
            "participant_id": ids,
            "arm": arm_code,
            "age": np.clip(np.round(rng.normal(42, 10, n)), 18, 75).astype(int),
            "sex": rng.choice(SEX_CODES[0], n, p=SEX_CODES[1]),
            "race": rng.choice(RACE_CODES[0], n, p=RACE_CODES[1]),
            "ethnicity": rng.choice(ETHNICITY_CODES[0], n, p=ETHNICITY_CODES[1]),
            "site": rng.choice(sim.sites, n),
            "enrolled_on": enrolled.astype(object),
            "disposition": disposition,
            "disposition_reason": reasons,
        }
    )

    weeks = np.array([v.week for v in followup])
    fraction = weeks / weeks[-1]
    n_visits, n_outcomes = len(weeks) + 1, len(plan.outcomes)
    # participant x visit (baseline first) x outcome, the order in which the rows are written
    values = np.empty((n, n_visits, n_outcomes))
    blank = np.zeros((n, n_visits, n_outcomes), dtype=bool)
    for o, outcome in enumerate(plan.outcomes):
        spec = sim.outcomes[outcome.name]
        low, high = outcome.range
        baseline = np.clip(np.round(rng.normal(spec.baseline_mean, spec.baseline_sd, n), spec.decimals), low, high) + 0.0
        mean_change = np.where(arm_is_treatment, spec.change_treatment, spec.change_control)
        shared = rng.standard_normal(n)[:, None]
        own = rng.standard_normal((n, len(weeks)))
        rho = spec.within_participant_correlation
        change = fraction[None, :] * mean_change[:, None] + spec.change_sd * (
            np.sqrt(rho) * shared + np.sqrt(1 - rho) * own
        )
        values[:, 0, o] = baseline
        # + 0.0 turns a rounded -0.0 into 0.0, which would otherwise print as "-0"
        values[:, 1:, o] = np.clip(np.round(baseline[:, None] + change, spec.decimals), low, high) + 0.0
        blank[:, 1:, o] = rng.random((n, len(weeks))) < sim.missing_value_rate
    recorded = np.ones((n, n_visits), dtype=bool)  # a dropout has no rows after the last visit attended
    recorded[:, 1:] = np.arange(len(weeks))[None, :] < last_visit[:, None]
    # rows in participant_id order as text (SIM10000 before SIM1001), as the files always had them
    order = np.argsort(ids.astype(str), kind="stable")
    who, visit, outcome = np.nonzero(np.broadcast_to(recorded[order][:, :, None], values.shape))
    person = order[who]
    value = values[person, visit, outcome]
    empty = blank[person, visit, outcome]
    if as_text:
        text = np.empty(value.size, dtype=object)
        for o, spec_outcome in enumerate(plan.outcomes):
            here = outcome == o
            text[here] = np.char.mod(f"%.{sim.outcomes[spec_outcome.name].decimals}f", value[here])
        text[empty] = ""
        column: np.ndarray = text
    else:
        column = np.where(empty, np.nan, value)
    measurements = pd.DataFrame(
        {
            "participant_id": ids[person],
            "visit": np.array(plan.visits.labels, dtype=object)[visit],
            "outcome": np.array([o.name for o in plan.outcomes], dtype=object)[outcome],
            "value": column,
        }
    )
    return SimulatedTrial(participants=participants, measurements=measurements)


def simulate_chunks(plan: Plan, seed: int, *, as_text: bool = True) -> Iterator[SimulatedTrial]:
    """The trial of :func:`simulate_trial`, :data:`CHUNK_PARTICIPANTS` participants at a time.

    Each chunk holds whole participants (their participants row and every measurement row); only one
    chunk is in memory at a time, so a trial of any size can be written. ``as_text=False`` gives
    ``value`` as floats (NaN for a value recorded as missing), as a Parquet file stores it.
    """
    if plan.simulation is None:
        raise PlanError("the plan has no 'simulation' section, so there is nothing to simulate from")
    n = plan.simulation.n_participants
    for index, first in enumerate(range(0, n, CHUNK_PARTICIPANTS)):
        size = min(CHUNK_PARTICIPANTS, n - first)
        yield _draw_chunk(plan, _chunk_generator(seed, index), first, size, as_text=as_text)


def simulate_trial(plan: Plan, seed: int) -> SimulatedTrial:
    """Draw a synthetic trial from the plan's ``simulation`` section.

    Parameters
    ----------
    plan
        A plan with a ``simulation`` section.
    seed
        Seed of ``numpy.random.default_rng``; the same plan and seed give identical tables.

    Returns
    -------
    SimulatedTrial
        ``participants`` and long ``measurements`` (values as text, rounded to the outcome's
        ``decimals``; an empty string is a value recorded as missing), as they are written to CSV.

    Examples
    --------
    Eight participants, each with a 25% chance of dropping out:

    >>> from analysis.plan import parse_plan
    >>> plan = parse_plan('''
    ... study: {id: demo, title: Demo trial, simulated: true}
    ... seed: 1
    ... data: {participants: {path: participants.csv}, measurements: {path: measurements.csv}}
    ... arms: {treatment: {label: Drug, codes: [D]}, control: {label: Placebo, codes: [P]}}
    ... visits:
    ...   baseline: baseline
    ...   followup: [{label: week4, week: 4}, {label: week8, week: 8}]
    ...   primary: week8
    ... outcomes:
    ... - {name: pain, label: Pain, unit: points, range: [0, 10], better: lower}
    ... simulation:
    ...   n_participants: 8
    ...   dropout: 0.25
    ...   outcomes:
    ...     pain: {baseline_mean: 7, baseline_sd: 1, change_treatment: -3, change_control: -1,
    ...            change_sd: 1, decimals: 0}
    ... ''')
    >>> trial = simulate_trial(plan, seed=1)
    >>> shown = ["participant_id", "arm", "age", "site", "enrolled_on", "disposition"]
    >>> print(trial.participants[shown].to_string(index=False))
    participant_id arm  age   site enrolled_on       disposition
           SIM0001   P   49 site-3  2023-02-23         completed
           SIM0002   P   37 site-3  2023-02-24 lost_to_follow_up
           SIM0003   D   26 site-3  2023-02-27         completed
           SIM0004   D   44 site-3  2023-03-06         completed
           SIM0005   D   43 site-3  2023-03-27         completed
           SIM0006   P   30 site-3  2023-06-08         completed
           SIM0007   D   35 site-1  2023-06-16         completed
           SIM0008   P   41 site-1  2023-06-30         completed
    >>> trial.measurements.head(6)
      participant_id     visit outcome value
    0        SIM0001  baseline    pain     7
    1        SIM0001     week4    pain     6
    2        SIM0001     week8    pain     6
    3        SIM0002  baseline    pain     6
    4        SIM0002     week4    pain     6
    5        SIM0003  baseline    pain     8

    Allocation is 1:1 in blocks of 4 (four D, four P above); ``SIM0002`` left after week 4, so it
    has no week-8 row:

    >>> trial.measurements.groupby("visit", sort=False).size().to_dict()
    {'baseline': 8, 'week4': 8, 'week8': 7}
    >>> simulate_trial(plan, seed=1).measurements.equals(trial.measurements)
    True
    """
    if plan.simulation is None:
        raise PlanError("the plan has no 'simulation' section, so there is nothing to simulate from")
    n = plan.simulation.n_participants
    rows = n * len(plan.visits.labels) * len(plan.outcomes)
    check_memory(
        TEXT_ROW_BYTES * rows,
        f"a simulated trial of {n:,} participants ({rows:,} measurement rows) held in memory",
        "write it with `trialkit simulate`, which writes it a chunk of participants at a time",
    )
    chunks = list(simulate_chunks(plan, seed))
    if len(chunks) == 1:
        return chunks[0]
    return SimulatedTrial(
        participants=pd.concat([c.participants for c in chunks], ignore_index=True),
        measurements=pd.concat([c.measurements for c in chunks], ignore_index=True),
    )


class _CsvSink:
    """One CSV file written chunk by chunk into a temporary file beside its destination."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination
        fd, name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
        self.temp = Path(name)
        self.handle = os.fdopen(fd, "wb")
        self.header = True

    def write(self, frame: pd.DataFrame) -> None:
        from analysis.core.output import table_csv_bytes

        data = table_csv_bytes(frame)
        self.handle.write(data if self.header else data[data.index(b"\n") + 1 :])
        self.header = False

    def commit(self) -> None:
        from analysis.core.output import _current_umask

        os.fchmod(self.handle.fileno(), 0o666 & ~_current_umask())  # mkstemp creates 0600
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp, self.destination)

    def discard(self) -> None:
        self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


class _ParquetSink:
    """A directory of Parquet part files (``part-00000.parquet``, ...), one per chunk, each holding
    whole participants: built in a temporary directory beside the destination, then swapped in."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination
        self.temp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent))
        self.parts = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.temp / f"part-{self.parts:05d}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        self.parts += 1

    def commit(self) -> None:
        from analysis.core.filesystem import cannot
        from analysis.core.output import _current_umask

        os.chmod(self.temp, 0o777 & ~_current_umask())  # mkdtemp creates 0700
        old = None
        if self.destination.is_dir():  # an earlier simulation: replaced whole, never merged
            old = Path(tempfile.mkdtemp(prefix=f".{self.destination.name}.", suffix=".old", dir=self.destination.parent))
            os.replace(self.destination, old / "previous")
        elif self.destination.exists():
            raise cannot("write to", self.destination, "it is a file, not a directory of Parquet part files")
        os.replace(self.temp, self.destination)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


def write_simulated_trial(loaded: LoadedPlan, seed: int, out_dir: Path | None = None) -> list[Path]:
    """Simulate and write the trial where the plan's data section points (or into ``out_dir``).

    The plan must name files in long layout with canonical column names. A ``csv`` file is one CSV
    file; a ``parquet`` file is written as a directory of part files (``part-00000.parquet``, ...,
    read in sorted name order), each holding :data:`CHUNK_PARTICIPANTS` whole participants, with
    ``value`` as a float (null where recorded missing). The trial is drawn and written a chunk at a
    time (:func:`simulate_chunks`), so memory stays bounded at any size; every file appears only
    when all of it is written.

    Examples
    --------
    >>> write_simulated_trial(load_plan("plan.yaml"), seed=1)  # doctest: +SKIP
    [PosixPath('.../participants.csv'), PosixPath('.../measurements.parquet')]
    """
    from analysis.core.filesystem import refuse_overwriting_inputs, reported_as
    from analysis.core.output import make_directory

    plan = loaded.plan
    data = plan.data
    try:
        formats = [data.participants.resolved_format(), data.measurements.resolved_format()]
    except ValueError as exc:  # a suffix that names no format
        raise PlanError(f"{loaded.path}: {exc}") from None
    if data.measurements.layout != "long" or not set(formats) <= {"csv", "parquet"}:
        raise PlanError(
            "simulate writes CSV or Parquet files in long layout; the plan's data section names another form"
        )
    if data.participants.columns or data.measurements.columns:
        raise PlanError("simulate writes canonical column names; remove the 'columns' mappings from the plan's data section")
    if plan.simulation is None:
        raise PlanError("the plan has no 'simulation' section, so there is nothing to simulate from")
    paths = [loaded.resolve(data.participants.path), loaded.resolve(data.measurements.path)]
    destinations = [out_dir / path.name if out_dir is not None else path for path in paths]
    refuse_overwriting_inputs({"the simulated participants file": destinations[0],
                               "the simulated measurements file": destinations[1]}, [loaded.path])
    sinks: list[_CsvSink | _ParquetSink] = []
    with reported_as("write to", destinations[1]):
        try:
            for fmt, destination in zip(formats, destinations, strict=True):
                make_directory(destination.parent)
                sinks.append(_CsvSink(destination) if fmt == "csv" else _ParquetSink(destination))
            for chunk in simulate_chunks(plan, seed, as_text=formats[1] == "csv"):
                sinks[0].write(chunk.participants)
                sinks[1].write(chunk.measurements)
            for sink in sinks:
                sink.commit()
        except BaseException:
            for sink in sinks:
                sink.discard()
            raise
    return destinations


def simulated_rows(path: Path) -> int:
    """Data rows of a file :func:`write_simulated_trial` wrote (a CSV file or a Parquet directory),
    counted without holding the table in memory."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        parts = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        return sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    return sum(len(chunk) for chunk in pd.read_csv(path, usecols=[0], dtype=str, chunksize=1_000_000))
