# Shared by scripts/serve, scripts/test and .ci/run (sourced, not executed).
# Makes sure .venv exists and holds this project installed with the given extra.

SCALEPLAN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCALEPLAN_VENV="${SCALEPLAN_VENV:-$SCALEPLAN_ROOT/.venv}"

scaleplan_log() { printf 'scaleplan: %s\n' "$*" >&2; }

# scaleplan_redact TEXT: TEXT with the passwords of any URLs in it masked (user:***@host), for logs.
scaleplan_redact() { sed -E 's#(://[^:/@[:space:]]*:)[^@/[:space:]]*@#\1***@#g' <<<"$*"; }

# scaleplan_venv base|dev
scaleplan_venv() {
    local extra="$1" spec python stamp want
    python="${PYTHON:-python3}"
    if [[ ! -x "$SCALEPLAN_VENV/bin/python" ]]; then
        if ! command -v "$python" >/dev/null; then
            scaleplan_log "no $python found; install Python >= 3.11 or set PYTHON=/path/to/python3.11"
            return 1
        fi
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            scaleplan_log "$python is $("$python" -V 2>&1); scaleplan needs Python >= 3.11 (set PYTHON=...)"
            return 1
        fi
        scaleplan_log "creating $SCALEPLAN_VENV"
        "$python" -m venv "$SCALEPLAN_VENV"
    fi
    # Reinstall only when pyproject.toml changed since the last install with
    # this extra, so repeated runs start in a second.
    want="$(sha256sum "$SCALEPLAN_ROOT/pyproject.toml" | cut -d' ' -f1)"
    stamp="$SCALEPLAN_VENV/.scaleplan-installed-$extra"
    if [[ "$extra" == base && -f "$SCALEPLAN_VENV/.scaleplan-installed-dev" \
          && "$(cat "$SCALEPLAN_VENV/.scaleplan-installed-dev")" == "$want" ]]; then
        return 0  # the dev install includes everything the base one has
    fi
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    spec="$SCALEPLAN_ROOT"
    [[ "$extra" == dev ]] && spec="$SCALEPLAN_ROOT[dev]"
    scaleplan_log "installing scaleplan ($extra) into $SCALEPLAN_VENV (first run takes a few minutes)"
    "$SCALEPLAN_VENV/bin/python" -m pip install --disable-pip-version-check --quiet -e "$spec"
    printf '%s\n' "$want" >"$stamp"
}

# True when a Redis server answers PING at the given URL within a second.
scaleplan_redis_answers() {
    "$SCALEPLAN_VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys
import redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PY
}
