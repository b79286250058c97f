from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path
from django.views.generic import RedirectView

from mailboxadmin.views import RateLimitedLoginView

PASSWORD_RESET_URL_NAMES = {
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# Sign-out and password change always; password reset only when email can be sent.
account_urls = [
    pattern
    for pattern in auth_urls.urlpatterns
    if settings.PASSWORD_RESET_ENABLED or pattern.name not in PASSWORD_RESET_URL_NAMES
]

urlpatterns = [
    path("", RedirectView.as_view(url="/mailboxes/", permanent=False)),
    # Django's login, refusing a username+address after repeated failures.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include(account_urls)),
    # The admin's own login would bypass the limit: it uses the same limited view.
    path("admin/login/", RateLimitedLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path("mailboxes/", include("mailboxes.urls")),
    path("users/", include("mailboxes.urls_users")),
    path("queues/", include("mailboxes.urls_queues")),
    path("settings/", include("mailboxes.urls_settings")),
    path("serverprofiles/", include("serverprofiles.urls")),
    path("emails/", include("mailboxes.urls_emails")),
    path("alerts/", include("mailboxes.urls_alerts")),
]
