"""Reader-facing tables: one model (:mod:`.model`), formatters (:mod:`.formats`), builders from the
run's tidy frames (:mod:`.builders`, :mod:`.results`) and two renderers (:mod:`.html` with
great-tables, :mod:`.docx` with python-docx) that say the same thing cell for cell."""
