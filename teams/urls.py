from django.urls import path

from teams import views

app_name = "teams"

urlpatterns = [
    path("<slug:team_slug>/", views.team_home, name="team_home"),
]
