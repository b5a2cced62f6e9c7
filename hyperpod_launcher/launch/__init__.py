"""Compose, check out the code, write the job folder, run preflight, submit."""
