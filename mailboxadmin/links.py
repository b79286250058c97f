"""Links to many records of one kind, from one reverse() per page."""

from django.urls import reverse

_PLACEHOLDER = "0"


def pk_links(viewname: str, *, current_app: str | None = None, quote=str):
    """A function giving `reverse(viewname, args=[pk], current_app=…)` for any pk.

    The URL is reversed once, with a placeholder, and each link is formatted from it: a
    list page that reverses the links of each of its rows spends a sixth of its time in
    reverse(). Make one per request (the script prefix and URL configuration are the
    request's); `viewname` takes the pk as its only argument.
    """
    url = reverse(viewname, args=(_PLACEHOLDER,), current_app=current_app)
    prefix, suffix = url.rsplit(f"/{_PLACEHOLDER}/", 1)
    return lambda pk: f"{prefix}/{quote(pk)}/{suffix}"
