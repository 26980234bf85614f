"""pytest plugin of wheel_check.sh: shows which mlp_rs the tests import and stops the
run if it is not the installed wheel."""

import os
import sysconfig

import pytest


def pytest_sessionstart(session):
    import mlp_rs

    where = os.path.realpath(mlp_rs.__file__)
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    if not where.startswith(site + os.sep):
        raise pytest.UsageError(f"mlp_rs imported from {where}, not from {site}")
    line = f"mlp_rs {mlp_rs.__version__} from {mlp_rs.__file__} (the installed wheel)"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
