"""Results analysis: per-cell statistics, power labels, budgets, regression verdicts, trends.

Everything here is a pure function over plain numbers and cell records
(:mod:`orchestrator.reports.data`), so it is tested without a database.
"""
