"""Capacity reporting: how busy each device class is, how long jobs wait, how long the
backlog takes to drain, and how many devices each class needs to meet its targets.

``capacity_report`` (API ``GET /capacity``, ``benchfarm capacity``), ``capacity_html``
(report section), ``plan_makespan`` (``benchfarm capacity plan``). Models: see
:mod:`orchestrator.capacity.queueing`.
"""
