"""datamover: hooks, operators, sensors and pure transfer logic for the project DAGs."""
