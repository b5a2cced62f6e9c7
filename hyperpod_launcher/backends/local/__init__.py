"""The local backend: torchrun on this machine.

Modules load on demand: the registry names `backend` and `options` apart, so checking a
cluster file never imports the renderer, and rendering never imports an SDK.
"""
