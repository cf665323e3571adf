"""Pure monitoring logic: no Airflow imports."""
