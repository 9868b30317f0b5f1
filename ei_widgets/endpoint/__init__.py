"""The hosted endpoint: ``deploy()`` a model behind a real HTTP server in its own process, as a
SageMaker endpoint with Elastic Inference attached was.

``predictor`` is the kernel's side (``deploy``, ``Predictor``, ``endpoints``), ``server`` the
child process (the SageMaker inference container contract: ``GET /ping``, ``POST /invocations``)
and ``config`` what the kernel tells it,
``queueing`` its instances and bounded queue, ``cloudwatch`` the metrics under their CloudWatch
names, ``capacity`` the service time and saturation rate of an endpoint (the one function sizing
calls), ``load_test`` the open-loop load generator, ``codec`` the request and response bodies,
``bill`` the endpoint's interval in the ledger.

May import ``ei_widgets.errors``, ``ei_widgets.common``, ``ei_widgets.models``,
``ei_widgets.profiling``, ``ei_widgets.device`` and ``ei_widgets.billing``.
"""
