#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# Runs as root (CI, the dev machines) or through sudo.
#   bash scripts/install_system_deps.sh prometheus docker-compose
# prometheus: the real server (and promtool) the scrape and rule tests use;
# docker-compose: v1, only to validate docker-compose.yml offline (`config -q`; no engine needed).
set -euo pipefail
needed=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || needed+=("$pkg")
done
if [ ${#needed[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${needed[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
