"""impasto studio: a local web page and a job API for style transfer (``impasto serve``).

Modules: :mod:`~impasto.studio.app` (the FastAPI app and the page), :mod:`~impasto.studio.manager` (queue
over the job layer's worker pool), :mod:`~impasto.studio.worker` (the job runner), :mod:`~impasto.studio.db` (SQLite),
:mod:`~impasto.studio.storage` (the data folder), :mod:`~impasto.studio.cli` (``impasto serve``) and
:mod:`~impasto.studio.client_cli` (``impasto submit``). The Python client is :mod:`impasto.studio.client`.
"""
