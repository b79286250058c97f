"""Times in the organisation's time zone (its email settings), on every page."""

from datetime import tzinfo
from zoneinfo import ZoneInfo

from django.utils import timezone

UTC = ZoneInfo("UTC")


class OrganizationTimeZone(tzinfo):
    """The organisation's time zone, read from its settings the first time a request
    shows a time: pages that show none (most lists) cost no query for it."""

    def __init__(self):
        self._zone = None

    @property
    def zone(self) -> ZoneInfo:
        if self._zone is None:
            from mailboxes.models import OrganizationSettings

            name = OrganizationSettings.objects.filter(pk=1).values_list("time_zone", flat=True).first()
            try:
                self._zone = ZoneInfo(name) if name else UTC
            except (ValueError, OSError):  # a name no longer known to this machine's tzdata
                self._zone = UTC
        return self._zone

    @property
    def key(self) -> str:
        return self.zone.key

    def __str__(self):
        return self.zone.key

    def __repr__(self):
        return f"OrganizationTimeZone({self._zone.key if self._zone else 'not read yet'})"

    def utcoffset(self, dt):
        return self.zone.utcoffset(dt)

    def dst(self, dt):
        return self.zone.dst(dt)

    def tzname(self, dt):
        # Django asks tzname(None) for a zone's name in SQL and falls back to str(): the key.
        return None if dt is None else self.zone.tzname(dt)

    def fromutc(self, dt):
        return self.zone.fromutc(dt.replace(tzinfo=self.zone)).replace(tzinfo=self)


class OrganizationTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.activate(OrganizationTimeZone())
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
