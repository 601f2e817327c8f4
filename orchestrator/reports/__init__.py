"""Reports of the device matrix, regenerating the seed performance guide from stored results.

data.py (DB -> cell records) -> orchestrator.analysis (statistics, budgets, verdicts, trends)
-> build.py (one Report) -> tables.py (the seed's tables) -> markdown / html+svg / csv_export /
hud (PyTorch HUD v3) renderers; matrix.py for the CLI matrix; ui.py for the /ui dashboard.
"""
