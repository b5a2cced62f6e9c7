"""The command line: argv, the launch app, the job and recipe commands, help and tables."""
