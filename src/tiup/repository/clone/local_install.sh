#!/bin/sh
# Install tiup from this offline mirror (written by `tiup mirror clone`): no network is
# used. It puts the mirror's tiup into $TIUP_HOME/bin (default ~/.tiup/bin), trusts the
# mirror's root.json, sets this directory as the mirror and adds tiup to PATH.
set -e
script_dir=$(cd "$(dirname "$0")" && pwd)

fail() { echo "Error: $*" >&2; exit 1; }

case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) fail "OS $(uname -s) is not supported (linux or darwin)" ;;
esac
case "$(uname -m)" in
    amd64|x86_64) arch=amd64 ;;
    arm64|aarch64) arch=arm64 ;;
    *) fail "architecture $(uname -m) is not supported (amd64 or arm64)" ;;
esac

tarball="$script_dir/tiup-$os-$arch.tar.gz"
if [ ! -f "$tarball" ]; then
    have=$(cd "$script_dir" && ls tiup-*-*.tar.gz 2>/dev/null | sed -n 's/^tiup-\([a-z0-9]*\)-\([a-z0-9]*\)\.tar\.gz$/\1\/\2/p' | tr '\n' ' ' | sed 's/ $//')
    fail "this mirror has no tiup for $os/$arch ($tarball is missing; it has: ${have:-none}): clone it with \`tiup mirror clone <dir> --tiup latest --os $os --arch $arch\`"
fi
for tool in tar gzip; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found: install it (RHEL/Rocky: dnf install $tool; Debian/Ubuntu: apt-get install $tool)"
done

TIUP_HOME=${TIUP_HOME:-$HOME/.tiup}
bin_dir="$TIUP_HOME/bin"
mkdir -p "$bin_dir"
work=$(mktemp -d "$bin_dir/.install.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -zxf "$tarball" -C "$work" || fail "cannot extract $tarball"
[ -f "$work/tiup" ] || fail "$tarball has no tiup at its top"

# The Python build of tiup (a shell prologue and a zip archive) needs glibc and python3.
mark=$(sed -n '2p' "$work/tiup" 2>/dev/null | cut -c1-200)
case "$mark" in
"# tiup-python-launcher "*)
    set -f; set -- $mark; set +f
    version=$3; pythons=$5
    [ "$os" = linux ] || fail "this tiup ($version) is built for Linux only"
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc \([0-9.]*\)$/\1/p')
    [ -n "$glibc" ] || fail "glibc not found (a musl system such as Alpine?): tiup $version needs a glibc-based Linux, glibc >= 2.28"
    gmaj=${glibc%%.*}; gmin=${glibc#*.}; gmin=${gmin%%.*}
    if [ "$gmaj" -lt 2 ] || { [ "$gmaj" -eq 2 ] && [ "$gmin" -lt 28 ]; }; then
        fail "glibc >= 2.28 not found (this host has $glibc): tiup $version needs RHEL/Rocky 8+, Debian 11+, Ubuntu 20.04+ or alike"
    fi
    # what to install, and how, on this distribution
    id=""; name="this system"
    if [ -r /etc/os-release ]; then
        id=$(. /etc/os-release && echo "$ID $VERSION_ID")
        name=$(. /etc/os-release && echo "$NAME $VERSION_ID")
    fi
    pkg=python3.11
    case "$id" in
        rhel*|rocky*|almalinux*|centos*|ol\ *|openEuler*|openeuler*|kylin*|fedora*)
            how="$name: dnf install python3.11" ;;
        ubuntu\ 20.*) how="$name: add the deadsnakes PPA, then apt-get install python3.11" ;;
        ubuntu\ 22.*) how="$name: apt-get install python3.11" ;;
        debian\ 11*) how="$name has no python3.11 package: build it from python.org" ;;
        debian*|ubuntu*) pkg=python3; how="$name: apt-get install python3" ;;
        *) how="$name: your distribution's python3.11 package" ;;
    esac
    py=""
    for cand in ${TIUP_PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1; then py=$cand; break; fi
    done
    [ -n "$py" ] || fail "python3 >= 3.11 not found: install $pkg ($how), or set TIUP_PYTHON to its path"
    pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || fail "$py does not run"
    case ",$pythons," in
        *",$pyver,"*) ;;
        *) fail "python3 >= 3.11 not found: $(command -v "$py") is Python $pyver and this tiup runs on Python $pythons: install $pkg ($how), or set TIUP_PYTHON to its path" ;;
    esac
    for module in ssl zlib; do
        "$py" -c "import $module" 2>/dev/null || fail "$(command -v "$py") has no $module module: install your distribution's python$pyver (not a build without $module), or set TIUP_PYTHON"
    done
    echo "Host check: $(uname -m), glibc $glibc, $(command -v "$py") (Python $pyver)"
    ;;
esac

chmod 755 "$work/tiup"
mv -f "$work/tiup" "$bin_dir/tiup"
echo "Installed $bin_dir/tiup from $tarball"
cp "$script_dir/root.json" "$bin_dir/root.json"
echo "Trusting this mirror's root: $bin_dir/root.json"
rm -rf "$TIUP_HOME/manifests"
"$bin_dir/tiup" mirror set "$script_dir" --silent || fail "$bin_dir/tiup mirror set $script_dir failed"
echo "Mirror set to $script_dir"

shell=$(basename "${SHELL:-sh}")
profile=""
for candidate in "$HOME/.${shell}_profile" "$HOME/.${shell}_login" "$HOME/.${shell}rc"; do
    if [ -f "$candidate" ]; then profile=$candidate; break; fi
done
[ -n "$profile" ] || profile="$HOME/.profile"
case ":$PATH:" in
    *":$bin_dir:"*) echo "$bin_dir is already on PATH" ;;
    *) echo "export PATH=$bin_dir:\$PATH" >> "$profile"
       echo "$profile has been modified to add tiup to PATH" ;;
esac
echo "Installed path: $bin_dir/tiup"
echo "Open a new terminal or source $profile to use it"
