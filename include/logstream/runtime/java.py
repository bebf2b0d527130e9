"""Which Java the project runs: the broker, spark-submit, Airflow's Spark tasks and ``javac``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from logstream.errors import MissingDependencyError


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH, else a clear error."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").exists():
        return str(Path(java_home, "bin", "java"))
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError(
            "Java is not installed (no JAVA_HOME, no `java` on PATH); install a JDK 17+ "
            "(apt-get install openjdk-17-jdk-headless) and set JAVA_HOME"
        )
    return java


def java_home() -> str:
    """``$JAVA_HOME``, else the home of the ``java`` found on PATH (symlinks resolved)."""
    return os.environ.get("JAVA_HOME") or str(Path(find_java()).resolve().parents[1])
