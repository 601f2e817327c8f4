from tests.reliability.fixtures import rel_env, rel_procs  # noqa: F401
