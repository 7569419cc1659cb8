"""``hub serve``: many pipelines in one long-running service, with a REST API shaped like
Kafka Connect's, Prometheus metrics and a live web page; and ``hub run --http``, the same
status and metrics for one foreground pipeline.

* :mod:`hub.service.handle`: what the service knows of one pipeline (state, metrics, errors)
  and its status document.
* :mod:`hub.service.managed`: one pipeline run by the service, in its own thread.
* :mod:`hub.service.supervisor`: the pipelines of a state folder, kept across restarts.
* :mod:`hub.service.collector`: the runtime's counters as Prometheus metrics, at scrape time.
* :mod:`hub.service.api`, :mod:`hub.service.page`: the HTTP API and the web page.
* :mod:`hub.service.server`: binding the address and running the ASGI server.

The service needs the ``serve`` extra (``pip install cdc-hub[serve]``).
"""
