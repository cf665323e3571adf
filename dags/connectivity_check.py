"""Preflight: every connection the project's DAGs use answers a real request."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from datamover.dag_defaults import default_args
from datamover.operators.connectivity import ConnectionCheckOperator

CONNECTIONS = (
    "egress_postgres",
    "catalog_postgres",
    "aws_default",
    "egress_input",
    "egress_output",
    "kafka_default",
    "pushgateway_default",
)

with DAG(
    dag_id="connectivity_check",
    description="Preflight: one real request per connection the DAGs use, naming what to fix",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(retries=0),
    render_template_as_native_obj=True,
    tags=["preflight", "datamover"],
    doc_md="""
### Connectivity check

Run this first on a new deployment. One task per connection does one cheap real request:
a query (PostgreSQL), ListBuckets (S3 and Ceph), cluster metadata (Kafka), a metric push
(Pushgateway). A failed task names the connection and what to fix in it.
Connections: """
    + ", ".join(f"`{c}`" for c in CONNECTIONS),
):
    for conn_id in CONNECTIONS:
        ConnectionCheckOperator(task_id=f"check_{conn_id}", conn_id=conn_id)
