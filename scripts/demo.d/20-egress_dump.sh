# egress_dump: seed egress_demo.tally_snapshots / subscription_capacity, then dump yesterday
# (a run for today's date covers [yesterday, today) and writes egress-dumps/daily/<yesterday>/).
python -m datamover.egress.demo_seed
run_dag egress_dump "$(date -u +%F)"
