"""Deployment helpers that Airflow's configuration points at (no Airflow imports).

`worker_hostname` is a `[core] hostname_callable` for several Celery workers on one machine (the local
`make standalone-celery`, the Celery tests): each worker process sets DATAMOVER_WORKER_HOSTNAME, so its
task instances record which worker ran them. On a real multi-host deployment leave it unset: the
callable then returns the machine's FQDN, which is Airflow's default.
"""

from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "DATAMOVER_WORKER_HOSTNAME"


def worker_hostname() -> str:
    return os.environ.get(HOSTNAME_ENV, "").strip() or socket.getfqdn()
