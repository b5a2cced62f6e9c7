"""The Slurm backend: sbatch scripts, pyxis or docker containers, squeue/sacct lifecycle.

Modules load on demand: the registry names `backend` and `options` apart, so checking a
cluster file never imports the renderer, and rendering never imports an SDK.
"""
