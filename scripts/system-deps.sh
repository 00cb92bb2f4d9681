#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only when missing.
#   postgresql  -> throwaway clusters for the PostgreSQL tests (/usr/lib/postgresql/*/bin)
#   chromium    -> browser tests through Playwright (/usr/bin/chromium)
#   pango, DejaVu, harfbuzz-subset, poppler-utils -> PDF rendering (WeasyPrint) and reading (pdftotext)
# Idempotent: when everything is present it makes no apt-get call at all.
# Not root and something missing: prints a one-line hint and exits 0 (those tests skip with a reason).
set -euo pipefail

missing=()

# Is a Debian package installed? (dpkg-query is fast and needs no lock)
installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
  missing+=(postgresql)
fi
if [[ ! -x /usr/bin/chromium ]]; then
  missing+=(chromium)
fi
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "system-deps: missing ${missing[*]}; run 'sudo bash scripts/system-deps.sh' (tests needing them will skip)"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "system-deps: missing ${missing[*]} and no apt-get here; install them by hand (tests needing them will skip)"
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt/dpkg process may hold the locks: wait for it up to 5 minutes. `install` waits by itself
# with DPkg::Lock::Timeout; `update` (apt 2.6) ignores that option for the lists lock, so retry it
# while, and only while, the failure is a held lock.
apt_opts=(-o DPkg::Lock::Timeout=300)
deadline=$((SECONDS + 300))
while true; do
  if out="$(apt-get "${apt_opts[@]}" update -qq 2>&1)"; then
    [[ -n "$out" ]] && echo "$out"
    break
  fi
  if [[ "$out" == *"Could not get lock"* ]] && ((SECONDS < deadline)); then
    echo "system-deps: apt lists are locked by another process, waiting..."
    sleep 5
    continue
  fi
  echo "$out" >&2
  exit 1
done
apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
