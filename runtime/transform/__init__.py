"""The transform and route operators (``[[transform]]``, ``[[route]]``), evaluated on Arrow
batches: :mod:`.expr` (SQL expressions), :mod:`.transform` (projection, filter, keys),
:mod:`.route` (target tables, merged schemas), :mod:`.operator` (chained before a sink)."""
