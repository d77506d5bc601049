from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def onboarding(request):
    return render(request, "integrations/onboarding.html")
