"""The Offload page: the Offload Stage's UI inside Airflow (an Airflow plugin in plugins/ registers it).

- `view`: what the page shows, built from plain data (no Airflow imports): the scan table, the
  credentials state, the progress of the latest offload, and the check of a selection.
- `status`: the latest `ark_offload_status` event per run, consumed from Kafka by the API server.
- `runs`: the Airflow side: reads ark_offload's runs, task states and XComs from the metadata DB and
  creates runs (Rescan = a dry run, Begin Offload = a run with the ticked logs).
- `app`: the FastAPI app the plugin mounts in the API server; every route needs an Airflow login
  with the permission to trigger ark_offload.
- `static/`: the page itself (HTML, JS, CSS; no build step).

The scan and the credentials check run where the onboard storage is: on the worker that runs
ark_offload, as its first tasks. The API server never reads the storage folder.
"""
