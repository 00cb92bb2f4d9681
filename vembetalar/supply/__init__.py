"""Supply: municipal drug stocks (kommunala läkemedelsförråd) and shortage handling (restsituationer).

The pure parts — first-expiry-first-out, reorder proposals, alerts, substitute ranking — take plain
values and know nothing of the database; ``ledger``, ``imports`` and ``impact`` put them to work on
the store. Contract: docs/supply.md.
"""
