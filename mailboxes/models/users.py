from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from mailboxadmin.validators import confusable_scripts, normalize_name


class MailboxUserManager(UserManager):
    """Creates every user through the service, so each one gets its mailbox."""

    def _create_user(self, username, email, password, **extra_fields):
        from mailboxes.services.users import user_create

        return user_create(username=username, email=email, password=password, **extra_fields)


class User(AbstractUser):
    """A person in the organisation; staff users log in to administer."""

    first_name = None
    last_name = None
    full_name = models.CharField("Full Name", max_length=200, blank=True)
    email = models.EmailField(
        "Primary Email", max_length=254, help_text="The address of this user's mailbox."
    )
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = MailboxUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = "user"
        ordering = ["username"]
        indexes = [models.Index(Lower("email"), name="user_email_lower")]
        permissions = [("administer_roles", "Change roles, permissions and other users' passwords")]

    def __str__(self):
        return self.full_name or self.username

    def clean(self):
        super().clean()
        self.username = normalize_name(self.username)
        if scripts := confusable_scripts(self.username):
            raise ValidationError(
                {
                    "username": f"This user name mixes {' and '.join(scripts)} letters, so it can pass "
                    "for another name. Use the letters of one alphabet."
                }
            )

    def get_absolute_url(self):
        return reverse("users:edit", args=[self.pk])

    def get_full_name(self):
        return self.full_name

    def get_short_name(self):
        return self.full_name or self.username
