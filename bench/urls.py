"""The bench's URLs: the product's, and the untuned admin it compares the tuned one against."""

from django.urls import path

from bench.untuned_admin import untuned_site
from mailboxadmin.urls import urlpatterns as product_urlpatterns

urlpatterns = [*product_urlpatterns, path("untuned-admin/", untuned_site.urls)]
