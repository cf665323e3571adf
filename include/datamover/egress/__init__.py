"""Pure egress logic: no Airflow imports."""
