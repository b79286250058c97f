"""What Django's error reports (the DEBUG page, the emails to ADMINS) may show."""

import re

from django.views.debug import SafeExceptionReporterFilter

# The names of form fields, and of local variables, that hold a secret: every password
# input (password, password1, new_password2, incoming_password …), the OAuth client
# secret and service account key, tokens (the CSRF token among them) and ciphertexts.
SECRET_NAMES = re.compile(r"pass|secret|token|key|credential|ciphertext", re.IGNORECASE)


class SecretsHiddenReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, always on and not only for what is marked sensitive.

    Django's own filter stands down when DEBUG is on, which `make run` turns on, and then
    the error page showed what was posted: a password typed in the same form, verbatim.
    Here every POST value and local variable whose name says it holds a secret is
    replaced by stars, and the settings and environment that hold the encryption keys or
    a database password are hidden as well.
    """

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern
        + "|ENCRYPTION|CREDENTIAL|DATABASE_URL|STORAGE_OPTIONS",
        re.IGNORECASE,
    )

    def is_active(self, request):
        return True

    def get_post_parameters(self, request):
        return self.cleansed_secrets(super().get_post_parameters(request))

    def get_cleansed_multivaluedict(self, request, multivaluedict):
        return self.cleansed_secrets(super().get_cleansed_multivaluedict(request, multivaluedict))

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleansed_substitute if SECRET_NAMES.search(name) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def cleansed_secrets(self, values):
        """`values` (POST data, or another MultiValueDict) with every secret's value
        replaced by stars; a copy when anything is replaced."""
        secrets = [name for name in values if isinstance(name, str) and SECRET_NAMES.search(name)]
        if not secrets:
            return values
        values = values.copy()
        for name in secrets:
            values[name] = self.cleansed_substitute
        return values
