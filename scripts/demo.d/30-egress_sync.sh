# egress_sync: mirror the dump that 20-egress_dump.sh just wrote (egress-dumps/daily/<yesterday>/ on the
# AWS S3 endpoint) to Ceph (datahub-egress/dh-secure/<yesterday>/). The same logical date as the dump's
# run: both use the data interval start, i.e. yesterday. The plan task creates the Ceph bucket if missing;
# an empty dump folder just copies nothing.
run_dag egress_sync "$(date -u +%F)"
