"""The Offload page (the Offload Stage's UI) in Airflow's navigation, served by the API server.

Thin: the page, its API and its logic live in the datamover package (datamover.offload_page).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from datamover.offload_page.entry import external_view, fastapi_app


class DatamoverOffloadPlugin(AirflowPlugin):
    name = "datamover_offload"
    fastapi_apps = [fastapi_app()]
    external_views = [external_view()]
