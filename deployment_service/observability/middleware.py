"""Dramatiq middleware: the log context of a message is its actor's ``pipeline_id`` and
``build_id`` arguments, so no actor needs its own ``with log_context(…)``."""

from __future__ import annotations

import inspect
import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

from deployment_service.observability.logs import CONTEXT_FIELDS, log_context_reset, log_context_set

logger = logging.getLogger(__name__)


def message_log_ids(broker: dramatiq.Broker, message: dramatiq.Message) -> dict[str, object]:
    """The context fields among the actor's arguments, matched by parameter name."""
    try:
        actor = broker.get_actor(message.actor_name)
        bound = inspect.signature(actor.fn).bind_partial(*message.args, **message.kwargs)
    except (dramatiq.errors.ActorNotFound, TypeError, ValueError):
        return {}  # the worker reports an unknown actor or bad arguments itself
    return {name: bound.arguments[name] for name in CONTEXT_FIELDS if name in bound.arguments}


class ActorLogContext(Middleware):
    def __init__(self) -> None:
        # before/after_process_message run in the worker thread that processes the message
        self._tokens = threading.local()

    def before_process_message(self, broker, message):
        self._tokens.current = log_context_set(**message_log_ids(broker, message))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        token = getattr(self._tokens, "current", None)
        if token is not None:
            self._tokens.current = None
            log_context_reset(token)

    after_skip_message = after_process_message
