from django.urls import path

from mailboxes.views.users import NewUserView, UserAutocompleteView, UserEditView, UserListView

app_name = "users"
urlpatterns = [
    path("", UserListView.as_view(), name="list"),
    path("autocomplete/", UserAutocompleteView.as_view(), name="autocomplete"),
    path("new/", NewUserView.as_view(), name="new"),
    path("<int:pk>/", UserEditView.as_view(), name="edit"),
]
