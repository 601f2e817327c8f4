"""Fleet operations over SSH: inventory, checks, bootstrap, service units, drain, harness builds."""
