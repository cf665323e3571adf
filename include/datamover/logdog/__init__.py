"""Pure logdog logic: no Airflow imports."""
