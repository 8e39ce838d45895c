"""The driver and the workers must run the same Python minor version and the
same cloudpickle: functions travel as bytecode and through cloudpickle's
private reconstructors. A mismatch is named instead of failing as a corrupt
unpickle deep inside a task."""

from __future__ import annotations

import sys

import cloudpickle

PYTHON_PROPERTY = "spark.ember.driver.python"
CLOUDPICKLE_PROPERTY = "spark.ember.driver.cloudpickle"


def _python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def driver_versions() -> dict[str, str]:
    """What the driver runs, sent with every job."""
    return {PYTHON_PROPERTY: _python(), CLOUDPICKLE_PROPERTY: cloudpickle.__version__}


class VersionMismatchError(RuntimeError):
    """The driver's Python or cloudpickle differs from the workers'."""


def check_driver(properties: dict) -> None:
    """In a task: refuses functions pickled by a different Python or cloudpickle."""
    python = properties.get(PYTHON_PROPERTY)
    pickler = properties.get(CLOUDPICKLE_PROPERTY)
    if python is None or (python == _python() and pickler == cloudpickle.__version__):
        return
    raise VersionMismatchError(
        f"the driver runs Python {python} with cloudpickle {pickler}, but the workers run "
        f"Python {_python()} with cloudpickle {cloudpickle.__version__}: run the driver with "
        f"the workers' interpreter ({sys.executable or '/usr/bin/python3'}; ember-submit does)")
