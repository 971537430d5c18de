"""The baseline: a bare FastAPI endpoint that only decodes an HS256 JWT (python-jose).

No database, no middleware, no dependency: what an authenticated request costs before the
service does anything. Run by bench/run.py as `uvicorn bare_app:app --app-dir bench`, with
BENCH_SECRET set to the service's SECRET_KEY so that it accepts the service's own tokens.
"""

import os

from fastapi import FastAPI, Header, HTTPException
from jose import JWTError, jwt

SECRET = os.environ["BENCH_SECRET"]
ALGORITHMS = ["HS256"]  # an explicit list, as the service uses

app = FastAPI()


@app.get("/me")
async def me(authorization: str = Header()) -> dict[str, str]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise HTTPException(401, "Not authenticated")
    try:
        claims = jwt.decode(token, SECRET, algorithms=ALGORITHMS)
    except JWTError:
        raise HTTPException(401, "Not authenticated") from None
    return {"sub": claims["sub"]}
