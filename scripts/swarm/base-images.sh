# shellcheck shell=bash
# Base images for the Swarm test without pulling anything (sourced by
# scripts/swarm-test.sh; needs engine.sh's swarm_log and swarm_die).
#
#   node:20-bookworm-slim   the Dockerfile's FROM: Debian bookworm (debootstrap
#                           --variant=minbase, docs and apt lists removed) with
#                           this host's node and npm, user node (1000)
#   debian:bookworm-slim    the Python worker's FROM: the same Debian alone; its
#                           build installs Debian's python3 packages with apt
#   eclipse-mosquitto:2.0,  one stand-in built from Debian's mosquitto,
#   redis:7.2-alpine,       mosquitto-clients (mosquitto_ctrl), redis-server
#   alpine                  and redis-tools, under the tags stack.yml and
#                           docs/DEPLOY.md use
#
# The two root file systems are kept as tarballs in $1 (the cache), so only
# the first run pays for debootstrap (about 30 s each, side by side).

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_BASE_TAG=node:20-bookworm-slim
DEBIAN_BASE_TAG=debian:bookworm-slim
SERVICE_TAGS=(eclipse-mosquitto:2.0 redis:7.2-alpine alpine:latest)
SERVICE_PACKAGES=mosquitto,mosquitto-clients,redis-server,redis-tools

# rootfs_tarball CACHE NAME [debootstrap options...]: CACHE/NAME.tar, made
# once. Written to a temporary name first, so an interrupted run leaves none.
rootfs_tarball() {
  local cache=$1 name=$2 tree
  shift 2
  [ ! -s "$cache/$name.tar" ] && {
    tree="$cache/$name.tree"
    rm -rf "$tree"
    debootstrap --variant=minbase "$@" bookworm "$tree" "$DEBIAN_MIRROR" >"$cache/$name.log" 2>&1 || {
      tail -n 20 "$cache/$name.log" >&2
      rm -rf "$tree"
      return 1
    }
    # What a slim image leaves out: apt's lists and downloads, docs, locales.
    rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* \
      "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/info/* \
      "$tree"/usr/share/locale/* "$tree"/var/log/*.log "$tree"/var/cache/debconf/*-old
    tar -C "$tree" -cf "$cache/$name.tar.part" . && mv "$cache/$name.tar.part" "$cache/$name.tar"
    rm -rf "$tree"
  }
  return 0
}

# base_images CACHE WORK: makes and tags the images above on the engine.
base_images() {
  local cache=$1 work=$2 node_bin npm_dir tree pid_node pid_services status=0
  mkdir -p "$cache"
  node_bin=$(command -v node) || swarm_die "needs node on PATH"
  node_bin=$(readlink -f "$node_bin")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/package.json" ] || swarm_die "cannot find npm's directory (got $npm_dir)"

  rootfs_tarball "$cache" bookworm-minbase &
  pid_node=$!
  rootfs_tarball "$cache" bookworm-services --include="$SERVICE_PACKAGES" &
  pid_services=$!
  wait "$pid_node" || status=1
  wait "$pid_services" || status=1
  [ "$status" = 0 ] || swarm_die "debootstrap failed (logs in $cache/*.log): is $DEBIAN_MIRROR reachable?"

  # The Node base: this host's node and npm where the official image has them.
  tree="$work/rootfs-node"
  mkdir -p "$tree"
  tar -C "$tree" -xf "$cache/bookworm-minbase.tar"
  install -m 0755 "$node_bin" "$tree/usr/local/bin/node"
  mkdir -p "$tree/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$tree/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$tree/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$tree/usr/local/bin/npx"
  grep -q '^node:' "$tree/etc/passwd" || {
    echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$tree/etc/passwd"
    echo 'node:x:1000:' >>"$tree/etc/group"
    echo 'node:*:19000:0:99999:7:::' >>"$tree/etc/shadow"
    mkdir -p "$tree/home/node"
    chown 1000:1000 "$tree/home/node"
  }
  # npm ci inside a build reaches the registry through this host's network,
  # whose TLS may be re-signed by a local CA: npm (only npm) trusts this
  # host's bundle. The official image has no such line.
  mkdir -p "$tree/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$tree/etc/ssl/certs/ca-certificates.crt"
  tar -C "$tree" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV npm_config_cafile=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["node"]' - "$NODE_BASE_TAG" >/dev/null ||
    swarm_die "docker import of $NODE_BASE_TAG failed"
  rm -rf "$tree"

  # Debian itself, for the Python worker: its apt reaches $DEBIAN_MIRROR, as
  # debootstrap wrote its sources.list.
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' "$cache/bookworm-minbase.tar" "$DEBIAN_BASE_TAG" >/dev/null ||
    swarm_die "docker import of $DEBIAN_BASE_TAG failed"

  # The services' stand-in: paths as the official images have them.
  tree="$work/rootfs-services"
  mkdir -p "$tree"
  tar -C "$tree" -xf "$cache/bookworm-services.tar"
  ln -sf x86_64-linux-gnu/mosquitto_dynamic_security.so "$tree/usr/lib/mosquitto_dynamic_security.so"
  [ -e "$tree/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so" ] ||
    swarm_die "the Debian mosquitto package has no dynamic-security plugin where expected"
  mkdir -p "$tree/mosquitto/config" "$tree/mosquitto/data" "$tree/data"
  tar -C "$tree" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'WORKDIR /data' \
    -c 'CMD ["sh"]' - "${SERVICE_TAGS[0]}" >/dev/null ||
    swarm_die "docker import of the services' stand-in failed"
  rm -rf "$tree"
  local tag
  for tag in "${SERVICE_TAGS[@]:1}"; do
    docker tag "${SERVICE_TAGS[0]}" "$tag"
  done
}
