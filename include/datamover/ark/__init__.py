"""Pure ark logic: no Airflow imports."""
