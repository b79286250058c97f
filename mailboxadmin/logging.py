"""A logging filter that keeps secrets out of every log line."""

import logging
import re

# Anything that looks like a credential assignment or a Fernet token.
_PATTERNS = [
    re.compile(
        r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)\b(['\"]?\s*[=:]\s*['\"]?)([^\s'\",}]+)"
    ),
    re.compile(r"gAAAAA[0-9A-Za-z_\-=]{20,}"),
    re.compile(r"(?i)(AUTH\s+(?:PLAIN|LOGIN)\s+)\S+"),
]


def redact(text: str) -> str:
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _PATTERNS[1].sub("[redacted]", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
