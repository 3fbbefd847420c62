"""The Django peer's views: the signed-in home page of Kinde's Django starter, and the setup view
that stands in for its sign-in callback.

The Kinde Python SDK is not packaged in Debian (and PyPI is out of reach), so the runner signs in for
real at the local provider itself and POSTs the token endpoint's answer to /setup, which stores in the
(file) session what the starter's callback would: the user's details and the tokens.
"""
import json

from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

import kinde_session


def index(request):
    """The home page: the user's name, email and avatar initials when signed in."""
    record = request.session.get("kinde")
    if not record or not kinde_session.is_authenticated(record["tokens"]):
        return render(request, "index.html", {"authenticated": False})
    user = record["user"]
    first = user.get("given_name") or ""
    last = user.get("family_name") or ""
    context = {
        "authenticated": True,
        "user_first_name": first,
        "user_last_name": last,
        "user_full_name": f"{first} {last}".strip(),
        "user_email": user.get("email") or "",
        "user_initials": f"{first[:1]}{last[:1]}".upper(),
    }
    return render(request, "index.html", context)


@csrf_exempt
@require_POST
def setup(request):
    """Stores a token endpoint answer (JSON body) in the session, as the starter's callback would."""
    try:
        answer = json.loads(request.body)
        record = kinde_session.session_record(answer)
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return HttpResponseBadRequest(f"not a token endpoint answer: {err}")
    request.session.cycle_key()
    request.session["kinde"] = record
    return JsonResponse({"stored": True, "email": record["user"]["email"]})
