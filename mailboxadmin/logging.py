"""A logging filter that keeps secrets out of every log line, tracebacks included."""

import logging
import re

# A credential assignment: a name that says password/secret/token/key (also inside a
# longer name such as incoming_password or csrfmiddlewaretoken), then = or :, then the
# value, quoted (up to the closing quote, escapes allowed) or bare.
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (\b\w*(?:password|passwd|pwd|secret|token|api[_-]?key)\w*)
    (['"]?\s*[=:]\s*)
    (?:(['"])(?:\\.|(?!\3).)*\3|[^\s'",}&;]+)
    """
)
_FERNET_TOKEN = re.compile(r"gAAAAA[0-9A-Za-z_\-=]{20,}")
_AUTH_PAYLOAD = re.compile(r"(?i)(AUTH\s+(?:PLAIN|LOGIN)\s+)\S+")
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization['\"]?\s*[=:]\s*['\"]?(?:\w+\s+)?)[^\s'\",}]+")


def _redact_assignment(match: re.Match) -> str:
    quote = match.group(3) or ""
    return f"{match.group(1)}{match.group(2)}{quote}[redacted]{quote}"


def redact(text: str) -> str:
    text = _ASSIGNMENT.sub(_redact_assignment, text)
    text = _FERNET_TOKEN.sub("[redacted]", text)
    text = _AUTH_PAYLOAD.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _AUTHORIZATION.sub(lambda m: f"{m.group(1)}[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    """Redacts the message, and the traceback and stack of the record, before any
    formatter of the handler sees them."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the traceback they print is
            # this redacted one (an exception message may carry a secret).
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
