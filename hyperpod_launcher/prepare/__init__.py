"""Prepare a job on this machine before its submit: check out its code, write its job folder,
run the preflight checks."""
