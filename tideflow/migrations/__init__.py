"""Numbered SQL migrations, applied in order by :func:`tideflow.db.migrate`.

Each file is ``NNNN_name.sql``; the number orders them and is recorded, with
the file's checksum, in ``tideflow_migrations`` of every database it was
applied to. Files are therefore never renamed, renumbered or edited once
released: a change is a new file with the next number.

There is no ``0005``: no migration ever had that number (the gap is harmless, the
runner only needs increasing numbers). ``tests/integration/test_migrations.py``
checks that numbers increase and that no other gap appears.

The whole current schema, as the migrations leave it, is in one file for
readers: ``tideflow/schema.sql`` (regenerated with ``python -m
tests.support.schema_snapshot > tideflow/schema.sql``, checked by the same test
against a migrated database). The correlation index is kept by PL/pgSQL
triggers there (``tideflow_correlation_index``, ``tideflow_correlation_origin``):
each event wait's rows and NOTIFY are written in the transaction that writes
the wait, whichever code path writes it.
"""

from __future__ import annotations
