"""Set Server Profile… and Set Delivery Methods… on the selected rows of the mailbox list.

The list posts the ticked ids here, or, after "Select all mailboxes that match", the
list's filters (select_across=1, view, q, profile), from which this page resolves the
same set the list shows. It asks for the new values, then applies them through
`mailboxes_bulk_action`, as the admin's actions do: at most BACKGROUND_THRESHOLD
mailboxes in the request (then the per-record result), more as a BulkJob (then its page).
"""

from django.contrib import messages
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from mailboxadmin.views import StaffPermissionMixin, safe_next_url
from mailboxes.forms import SetDeliveryMethodsForm, SetServerProfileForm
from mailboxes.models import BulkJob, Mailbox
from mailboxes.services.bulk_jobs import mailboxes_bulk_action
from mailboxes.views.filters import record_id
from mailboxes.views.list_filters import MailboxListFilters


def selection(values: list[str]) -> tuple[list[int], int]:
    """The ids of the selected mailboxes that exist, and how many selected values named none."""
    wanted = {pk for pk in map(record_id, values) if pk is not None}
    found = sorted(Mailbox.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else []
    return found, len(set(values)) - len(found)


def _edit_link(pk: int | None) -> str:
    return reverse("mailboxes:edit", args=[pk]) if pk is not None else ""


class BulkEditView(StaffPermissionMixin, View):
    """POST selected=<id>...: the form; POST with apply=yes: the change, then its result."""

    view_permission = "mailboxes.change_mailbox"
    change_permission = "mailboxes.change_mailbox"
    http_method_names = ["get", "post"]
    form_class = None
    action = ""  # a BulkJob.Action
    title = ""

    def parameters(self, form) -> dict:
        raise NotImplementedError

    def get(self, request):
        return self.respond(request, request.GET, self.form_class())

    def post(self, request):
        form = self.form_class(request.POST) if request.POST.get("apply") == "yes" else self.form_class()
        return self.respond(request, request.POST, form)

    def respond(self, request, data, form):
        back = safe_next_url(request, reverse("mailboxes:list"))  # the list's page, filters kept
        across = data.get("select_across") == "1"
        if across:
            filters = MailboxListFilters.from_params(data)
            if not filters.searchable:
                return HttpResponseBadRequest("This search can match no mailbox.", content_type="text/plain")
            matching = filters.apply(Mailbox.objects.all())
            ids, ignored, count = None, 0, matching.count()
        else:
            ids, ignored = selection(data.getlist("selected"))
            count = len(ids)
        if not count:
            messages.warning(request, f"{self.title}: select one or more mailboxes first.")
            return HttpResponseRedirect(back)
        if not form.is_bound or not form.is_valid():
            context = {
                "title": self.title,
                "form": form,
                "count": count,
                "selected": ids or [],
                "matching": filters.as_params() if across else None,
                "matching_label": filters.label if across else "",
                "ignored": ignored,
                "back": back,
            }
            return render(request, "mailboxes/bulk_edit_form.html", context)
        if across:
            # The set as it is now: mailboxes that came to match since the form was shown
            # are included, as the list would show them.
            ids = list(matching.order_by("pk").values_list("pk", flat=True))
        result = mailboxes_bulk_action(
            action=self.action, mailbox_ids=ids, parameters=self.parameters(form), actor=request.user
        )
        if isinstance(result, BulkJob):
            messages.info(
                request,
                f"{result.get_action_display()} on {result.total} mailboxes is scheduled to run in the "
                "background.",
            )
            return HttpResponseRedirect(result.get_absolute_url())
        context = {**self.result_context(result, ids, ignored), "back": back}
        return render(request, "mailboxes/bulk_edit_result.html", context)

    def result_context(self, outcome, ids: list[int], ignored: int) -> dict:
        """The per-record result; each refused record links to its mailbox."""
        pks = dict(
            Mailbox.objects.filter(pk__in=ids, email__in=[r.record for r in outcome.refused]).values_list(
                "email", "pk"
            )
        )
        refused = [
            {
                "record": refusal.record,
                "reasons": refusal.reasons,
                "link": _edit_link(pks.get(refusal.record)),
            }
            for refusal in outcome.refused
        ]
        return {"title": self.title, "outcome": outcome, "refused": refused, "ignored": ignored}


class SetServerProfileView(BulkEditView):
    form_class = SetServerProfileForm
    action = BulkJob.Action.SET_SERVER_PROFILE
    title = "Set Server Profile"

    def parameters(self, form) -> dict:
        return {"server_profile": form.cleaned_data["server_profile"].pk}


class SetDeliveryMethodsView(BulkEditView):
    form_class = SetDeliveryMethodsForm
    action = BulkJob.Action.SET_DELIVERY_METHODS
    title = "Set Delivery Methods"

    def parameters(self, form) -> dict:
        return form.methods()
