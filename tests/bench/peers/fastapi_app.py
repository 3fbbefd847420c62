"""The FastAPI peer of `make bench-peers`: the FastAPI tutorial's /items/{item_id} behind the session
dependency of Kinde's FastAPI starter (a session read from Starlette's signed session cookie, 401
{"detail": "Not authenticated"} without a signed-in user), and the setup route that stands in for the
starter's sign-in callback.

The Kinde Python SDK is not packaged in Debian (and PyPI is out of reach), so the runner signs in for
real at the local provider itself and POSTs the token endpoint's answer to /setup, which stores in the
session what the starter's callback would: the user's details and the tokens.
"""
import os
from typing import Union

from fastapi import Depends, FastAPI, HTTPException, Request, status
from starlette.middleware.sessions import SessionMiddleware

import kinde_session

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=os.environ["PEER_SECRET"])


def get_kinde_session(request: Request):
    """The signed-in user's session record, or 401 as the starter answers."""
    record = request.session.get("kinde")
    if not record or not kinde_session.is_authenticated(record.get("tokens")):
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Not authenticated")
    return record


@app.get("/items/{item_id}")
def read_item(item_id: int, q: Union[str, None] = None, kinde: dict = Depends(get_kinde_session)):
    return {"item_id": item_id, "q": q}


@app.post("/setup")
async def setup(request: Request):
    """Stores a token endpoint answer (JSON body) in the session, as the starter's callback would."""
    try:
        record = kinde_session.session_record(await request.json())
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise HTTPException(status_code=400, detail=f"not a token endpoint answer: {err}") from err
    request.session.clear()
    request.session["kinde"] = record
    return {"stored": True, "email": record["user"]["email"]}
