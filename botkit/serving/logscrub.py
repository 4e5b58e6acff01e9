"""Keep what users send out of the server's log lines.

BentoML logs every rejected request with the exception's traceback
(``bentoml._internal.server.http_app.log_exception``, ``exc_info=True``). For a body that fails
validation that exception is pydantic's ``ValidationError``, whose text repeats the input
(``input_value='my card is 4111 ...'``): a message refused for a control character reached the
log raw, card number included. An exception raised while parsing JSON or serving a request can
echo the request in the same way.

:class:`WithholdRequestData` is a logging filter on the loggers that log request failures. It
keeps the line, the route, the exception's type and the code frames (what an operator needs)
and drops the exception's message; for a validation error it keeps where and what was wrong
(``message: string_too_long``), never the value. It is installed in every worker when the
service module is imported (:func:`install`).
"""

from __future__ import annotations

import logging
import traceback

__all__ = ["GUARDED_LOGGERS", "WithholdRequestData", "install"]

# Loggers that log request failures: BentoML's request handler (both its HTTP apps), its
# serving logger, uvicorn's error log, and botkit's own.
GUARDED_LOGGERS = ("bentoml._internal.server.http_app", "bentoml.serve", "bentoml", "uvicorn.error",
                   "uvicorn", "botkit")
WITHHELD = "exception message withheld: it may repeat the request"


def _validation_summary(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return None
    try:
        items = errors(include_input=False, include_context=False, include_url=False)
    except TypeError:  # not pydantic's
        return None
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('type', '?')}" for e in items[:10]]
    return f"{len(items)} validation error(s): " + "; ".join(parts)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


class WithholdRequestData(logging.Filter):
    """Rewrite a record carrying an exception: type and frames stay, the message goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        exc = record.exc_info[1]
        summary = next((s for e in _chain(exc) if (s := _validation_summary(e))), None)
        if summary is not None:
            detail = summary  # a rejected body: no traceback needed, nothing of the input kept
        else:
            frames = "".join(traceback.format_tb(record.exc_info[2])).rstrip()
            causes = " <- ".join(type(e).__name__ for e in _chain(exc))
            detail = f"{causes} ({WITHHELD})\n{frames}"
        record.msg = f"{record.getMessage()}: {detail}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


_FILTER = WithholdRequestData()


def install() -> None:
    """Attach the filter to every guarded logger (idempotent)."""
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
