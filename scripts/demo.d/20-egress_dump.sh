# egress_dump: the demo tables (seeded by `make sample-data`), dumped for yesterday (a run for today's date
# covers [yesterday, today) and writes egress-dumps/daily/<yesterday>/).
run_dag egress_dump "$(date -u +%F)"
