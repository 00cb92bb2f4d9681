"""Oversight: improper prescribing and benefit-cost follow-up per workplace and prescriber code.

Dispensing records are imported into a Parquet store (``store``), indicators are portable SQL
(``sql/``) run by DuckDB on a laptop or by Spark for a national deployment (``engines``), and the
ranked, explained flags (``run``) are reviewed by the pharmaceutical unit in the web app.
"""
