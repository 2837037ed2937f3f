# shellcheck shell=bash
# Shared by deploy/images/build, the Makefile's compose targets and tests/compose: where the
# per-machine cache lives, the image names, and which Compose v2 to run.

IMAGES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# The Debian mirror the system already uses, and messages (die/note) like the local stack's.
# shellcheck source=../local/lib/common.sh
source "$IMAGES_ROOT/deploy/local/lib/common.sh"
# shellcheck source=../local/lib/pgvector.sh
source "$IMAGES_ROOT/deploy/local/lib/pgvector.sh"

note() { echo "images: $*" >&2; }
die() {
    echo "images: $*" >&2
    exit 1
}

# Per machine, never in the checkout: the debootstrapped base and the Compose binary.
KB_IMAGES_CACHE=${KB_IMAGES_CACHE:-/var/lib/kbmirror/images}
# Image names: <prefix>:<tag> for the services, <prefix>-nats etc. for the servers.
KB_IMAGE_PREFIX=${KB_IMAGE_PREFIX:-kb-mirror}
KB_IMAGE_TAG=${KB_IMAGE_TAG:-local}

# The variables docker-compose.yml reads, pointing at the locally built images.
local_image_env() {
    echo "KB_IMAGE=$KB_IMAGE_PREFIX:$KB_IMAGE_TAG"
    echo "KB_NATS_IMAGE=$KB_IMAGE_PREFIX-nats:$KB_IMAGE_TAG"
    echo "KB_POSTGRES_IMAGE=$KB_IMAGE_PREFIX-postgres:$KB_IMAGE_TAG"
    echo "KB_NEO4J_IMAGE=$KB_IMAGE_PREFIX-graph:$KB_IMAGE_TAG"
}

# Compose v2 (`docker compose`). Debian 12 ships only the retired v1 (no `up --wait`, ignores
# resource limits), so when the plugin is missing we use the v2 binary of Debian's next release,
# fetched once through apt (signatures checked) into the cache.
COMPOSE_DEB_VERSION=2.26.1-4
COMPOSE_SUITE=trixie

compose_bin() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
        return 0
    fi
    local bin=$KB_IMAGES_CACHE/compose-$COMPOSE_DEB_VERSION/docker-compose
    if [[ ! -x $bin ]]; then
        fetch_compose "$(dirname "$bin")" >&2
    fi
    echo "$bin"
}

fetch_compose() {
    local dest=$1 uri apt
    uri=$(debian_mirror_uri) || die "no Debian mirror found in /etc/apt: cannot fetch Compose v2"
    [[ -r $DEBIAN_KEYRING ]] || die "$DEBIAN_KEYRING is missing"
    install -d -m 755 "$KB_IMAGES_CACHE"
    apt=$(mktemp -d "$KB_IMAGES_CACHE/.apt.XXXXXX")
    install -d -m 755 "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb"
    echo "deb [signed-by=$DEBIAN_KEYRING] $uri $COMPOSE_SUITE main" >"$apt/sources.list"
    if id -u _apt >/dev/null 2>&1; then chown -R _apt "$apt"; fi
    note "fetching Compose v2 ($COMPOSE_DEB_VERSION from $COMPOSE_SUITE)"
    private_apt "$apt" update >"$apt/update.log" 2>&1 || {
        cat "$apt/update.log" >&2
        die "apt could not read the $COMPOSE_SUITE index"
    }
    (cd "$apt/deb" && private_apt "$apt" download "docker-compose=$COMPOSE_DEB_VERSION") \
        >"$apt/download.log" 2>&1 || {
        cat "$apt/download.log" >&2
        die "apt could not download docker-compose $COMPOSE_DEB_VERSION"
    }
    dpkg-deb -x "$apt"/deb/docker-compose_*.deb "$apt/root"
    install -d -m 755 "$dest"
    install -m 755 "$apt/root/usr/libexec/docker/cli-plugins/docker-compose" "$dest/.docker-compose.new"
    mv -f "$dest/.docker-compose.new" "$dest/docker-compose"
    rm -rf "$apt"
}
