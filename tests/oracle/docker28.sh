#!/bin/bash
# The second judge: Debian unstable's dockerd 28.5 and the containerd 2.1 it runs, unpacked
# into DEST (default /opt/docker28) without installing them. dockerd 28.5 keeps images in
# the containerd image store -- Docker 29's default -- when its config says
# {"features": {"containerd-snapshotter": true}}; it starts the first `containerd` on PATH,
# so DEST/usr/bin goes first (Debian 12's own containerd 1.6 must not be the one).
#
#   usage: tests/oracle/docker28.sh [DEST]      prints DEST; idempotent, safe to run twice at once
#
# Uses this machine's Debian package source with the suite swapped to sid, and apt's cache
# folders in a temporary directory: nothing on the machine is installed or upgraded.
set -euo pipefail
dest=${1:-/opt/docker28}
pinned_docker=28.5.2+dfsg4-5
pinned_containerd=2.1.9+ds1-5
done_marker="$dest/.unpacked"
if [ -e "$done_marker" ]; then echo "$dest"; exit 0; fi
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9                               # a second run waits for the first, then finds it done
if [ -e "$done_marker" ]; then echo "$dest"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
[ -n "$uri" ] || { echo "docker28: no Debian mirror found in this machine's apt sources" >&2; exit 1; }
echo "deb $uri sid main" > "$work/sources.list"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
apt=(apt-get -o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
     -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
"${apt[@]}" update -qq >/dev/null
if ! (cd "$work" && "${apt[@]}" download -qq "docker.io=$pinned_docker" \
        "containerd=$pinned_containerd" >/dev/null 2>&1); then
  # The judge is pinned; when sid has moved on, take what it has and say so loudly.
  echo "docker28: WARNING: docker.io=$pinned_docker containerd=$pinned_containerd are gone" \
       "from sid; unpacking its current versions instead" >&2
  (cd "$work" && "${apt[@]}" download -qq docker.io containerd >/dev/null)
fi
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
"$dest/usr/sbin/dockerd" --version >&2
"$dest/usr/bin/containerd" --version >&2
touch "$done_marker"
echo "$dest"
