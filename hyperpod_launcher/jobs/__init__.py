"""The job index, status, logs, following a job and explaining failures."""
