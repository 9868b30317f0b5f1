"""The notebook views: the dashboard (``views.dashboard``) and its panels, one module each.

Views only display core state and call core functions; they hold no business logic.
"""
