"""The inference API (seed 001): FastAPI + uvicorn on port 5000, `python -m apps.api`.

`app.py` assembles, `routes.py` serves, `state.py` holds and hot-reloads the model,
`settings.py` reads the environment once, `metrics.py` counts; `workload.py` (gitops room)
says how it runs on Kubernetes.
"""
