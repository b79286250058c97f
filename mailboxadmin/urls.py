from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from mailboxadmin.views import RateLimitedLoginView

urlpatterns = [
    path("", RedirectView.as_view(url="/mailboxes/", permanent=False)),
    # Django's login, refusing a username+address after repeated failures.
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The admin's own login would bypass the limit: it uses the same limited view.
    path("admin/login/", RateLimitedLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path("mailboxes/", include("mailboxes.urls")),
    path("users/", include("mailboxes.urls_users")),
    path("queues/", include("mailboxes.urls_queues")),
    path("settings/", include("mailboxes.urls_settings")),
    path("serverprofiles/", include("serverprofiles.urls")),
]
