# Preflight: every connection answers.
run_dag connectivity_check
