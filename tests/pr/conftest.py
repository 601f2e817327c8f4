from tests.api.fixtures import svc_env  # noqa: F401
