"""Pure streams logic: no Airflow imports."""
