"""Airflow listeners (registered by the plugins in plugins/): glue around the pure packages."""
