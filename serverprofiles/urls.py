from django.urls import path

from serverprofiles.views import (
    ConnectionTestStatusView,
    ConnectionTestView,
    NewProfileView,
    ProfileCommandView,
    ProfileDeleteView,
    ProfileEditView,
    ProfileListView,
)

app_name = "serverprofiles"
urlpatterns = [
    path("", ProfileListView.as_view(), name="list"),
    path("new/", NewProfileView.as_view(), name="new"),
    path("<int:pk>/", ProfileEditView.as_view(), name="edit"),
    path("<int:pk>/delete/", ProfileDeleteView.as_view(), name="delete"),
    path("<int:pk>/commands/", ProfileCommandView.as_view(), name="commands"),
    path("connection-tests/<int:pk>/", ConnectionTestView.as_view(), name="connection-test"),
    path(
        "connection-tests/<int:pk>/status/", ConnectionTestStatusView.as_view(), name="connection-test-status"
    ),
]
