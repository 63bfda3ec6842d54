"""REDCap as a data source: a flat CSV export read together with its data dictionary.

The contract is described for data managers in ``data/schemas/redcap.md``. In short:

* the export is REDCap's flat CSV (raw codes, not labels): one row per record x event (x repeat
  instance), with ``record_id``, ``redcap_event_name`` (longitudinal projects),
  ``redcap_repeat_instrument`` / ``redcap_repeat_instance`` (repeating instruments), checkbox
  choices as ``field___code`` columns holding 0/1, and ``<form>_complete`` (0, 1, 2);
* the data dictionary is REDCap's 18-column CSV. Its field types, choices and text-validation
  min/max become pandera checks (:func:`dictionary_schema`), so a value outside the declared range
  or choices is a failure naming the field;
* the plan's ``data.redcap`` section maps events (or repeat instances) to visits, fields to
  outcomes and to participant columns, and declares the project's missing-data codes. A declared
  code is read as a missing value and counted, never as a number; a field whose annotation carries
  REDCap's ``@NOMISSING`` action tag may not hold one.

:func:`read_redcap` returns the same four tables as :func:`analysis.sources.trial.read_sources` does for
native files, so validation and derivation are shared. :func:`analysis.reporting.redcap.to_redcap`
builds a REDCap-shaped project (export + dictionary) from validated trial tables; the bundled
fixtures are made with it.

The code is in :mod:`analysis.sources.redcap.dictionary` (the data dictionary and the checks
built from it), :mod:`analysis.sources.redcap.read` (:func:`read_redcap`) and
:mod:`analysis.sources.redcap.draft` (:func:`draft_plan`); this module re-exports their public names.
"""

from analysis.sources.redcap.dictionary import (
    DICTIONARY_COLUMNS,
    DataDictionary,
    DictionaryField,
    dictionary_schema,
    field_checks,
    parse_choices,
    read_dictionary,
)
from analysis.sources.redcap.draft import draft_plan
from analysis.sources.redcap.read import SYSTEM_COLUMNS, read_redcap

__all__ = [
    "DICTIONARY_COLUMNS",
    "SYSTEM_COLUMNS",
    "DataDictionary",
    "DictionaryField",
    "dictionary_schema",
    "draft_plan",
    "field_checks",
    "parse_choices",
    "read_dictionary",
    "read_redcap",
]
