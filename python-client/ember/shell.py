"""ember-shell's start-up: a SparkContext named ``sc`` in an interactive
Python session (the master comes from ``--master`` via EMBER_MASTER)."""

from __future__ import annotations

from ember.context import SparkContext


def start() -> SparkContext:
    """Connects, prints where, and returns the context the shell calls ``sc``."""
    sc = SparkContext(appName="ember-shell")
    print(f"Ember {sc.version}: `sc` is connected to {sc.master} "
          f"(application {sc.applicationId}); web UI at {sc.uiWebUrl}")
    return sc
