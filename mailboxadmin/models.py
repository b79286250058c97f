from django.db import models


class LoginFailures(models.Model):
    """Recent failed sign-ins counted for one client address or one user name.

    One row per (scope, key), locked while an attempt is counted, so that parallel
    attempts are counted one after the other (mailboxadmin.ratelimit).
    """

    class Scope(models.TextChoices):
        ADDRESS = "address", "Client address"
        USERNAME = "username", "User name"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    # A SHA-256 digest: the table need not list who was being guessed, or from where.
    key = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    window_started = models.DateTimeField()
    # No attempt for this user name is checked before then.
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "login failures"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="loginfailures_one_row_per_key"),
            models.CheckConstraint(
                condition=models.Q(scope__in=["address", "username"]), name="loginfailures_scope_valid"
            ),
        ]
        # Serves the clean-up of rows whose window has passed.
        indexes = [models.Index(fields=["window_started"], name="loginfailures_window")]

    def __str__(self):
        return f"{self.failures} failures for a {self.get_scope_display().lower()}"
