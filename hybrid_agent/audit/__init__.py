"""Audit trail: typed records (``records``), the batched writer (``writer.AuditWriter``) with its
spool, the hash-chained store (``store``, ``models``, ``migrations/``) and the compliance queries
(``queries``, ``cli``).  See docs/audit.md."""
