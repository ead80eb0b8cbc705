"""Logs one user in through Shroud's OAuth Agent and the dev IdP, as an SPA would, and prints the session
as shell assignments (SHROUD_AT=…), for schemathesis to send real cookies.

Usage: login.py SHROUD_URL ORIGIN REDIRECT_URI
"""

import shlex
import sys
from urllib.parse import urljoin

import requests

shroud, origin, redirect_uri = sys.argv[1:4]
agent = f"{shroud}/oauth-agent"
browser = requests.Session()

start = browser.post(f"{agent}/login/start", headers={"Origin": origin}, timeout=10)
start.raise_for_status()
location = start.json()["authorizationRequestUrl"]
# The dev IdP logs the user in on its own: follow its redirects until it sends the browser back.
for _ in range(10):
    if location.startswith(redirect_uri):
        break
    hop = browser.get(location, allow_redirects=False, timeout=10)
    if hop.status_code not in (302, 303):
        sys.exit(f"login: the IdP answered {hop.status_code} at {hop.url.split('?')[0]}")
    location = urljoin(hop.url, hop.headers["location"])
else:
    sys.exit("login: the IdP never redirected back")

end = browser.post(f"{agent}/login/end", json={"pageUrl": location}, headers={"Origin": origin}, timeout=10)
end.raise_for_status()
session = end.json()
if not session.get("isLoggedIn"):
    sys.exit(f"login: not logged in: {session}")
cookies = {cookie.name: cookie.value for cookie in browser.cookies if cookie.name.startswith("shroud-")}
for variable, value in [
    ("SHROUD_AT", cookies["shroud-at"]),
    ("SHROUD_AUTH", cookies["shroud-auth"]),
    ("SHROUD_ID", cookies["shroud-id"]),
    ("SHROUD_CSRF_COOKIE", cookies["shroud-csrf"]),
    ("SHROUD_CSRF", session["csrf"]),
]:
    print(f"export {variable}={shlex.quote(value)}")
