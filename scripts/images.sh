#!/usr/bin/env bash
# Builds octoha's container images for the docker provider on an engine that
# cannot pull anything: a Debian root filesystem made with debootstrap from
# the same apt mirror this machine uses, imported with `docker import`, and
# every other image built FROM it (or FROM scratch) with the classic builder
# and --pull=false. See docker/README.md.
#
#   scripts/images.sh [build] [IMAGE...]   build (default: all) missing or stale images
#   scripts/images.sh verify [IMAGE...]    run each image briefly and check it works
#   scripts/images.sh list                 print OCTOHA_IMAGE_*=name lines
#   scripts/images.sh clean                remove the images this script built
#
# IMAGE is one of: debian haproxy samba postgres node.
#
# Environment:
#   OCTOHA_IMAGE_PREFIX   name prefix of the images built here (default octoha-local/)
#   OCTOHA_IMAGE_<NAME>   use that image instead; this script then does not build it
#   OCTOHA_DEBIAN_MIRROR  apt mirror for debootstrap and the images (default: the
#                         one in /etc/apt/sources.list*)
#   OCTOHA_CACHE_DIR      where the root filesystem tarball is kept
#                         (default ${XDG_CACHE_HOME:-~/.cache}/octoha)
#   FORCE=1               rebuild every selected image even if it is up to date
#   REFRESH_ROOTFS=1      run debootstrap again even if the tarball is cached
#   GO                    go command for the node binary (default: go)
#   DEBOOTSTRAP           debootstrap command (default: debootstrap)
#   OCTOHA_NODE_BINARY    use this static octoha binary instead of building one
set -euo pipefail

SUITE=bookworm
PREFIX=${OCTOHA_IMAGE_PREFIX-octoha-local/}
CACHE_DIR=${OCTOHA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/octoha}
GO=${GO:-go}
FORCE=${FORCE:-0}
REFRESH_ROOTFS=${REFRESH_ROOTFS:-0}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER_DIR=$REPO_ROOT/docker
SOURCE_URL=https://github.com/octoha/octoha
ALL_IMAGES=(debian haproxy samba postgres node)
# The docker CLI here (28.x) has no buildx, and BuildKit would try to resolve
# base images against a registry; the classic builder uses local images only.
export DOCKER_BUILDKIT=0

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

# default_name IMAGE: the name this script builds it under.
default_name() {
  case $1 in
    debian) echo "${PREFIX}debian:$SUITE" ;;
    haproxy) echo "${PREFIX}haproxy:2.6" ;;
    samba) echo "${PREFIX}samba:4" ;;
    postgres) echo "${PREFIX}postgres:15" ;;
    node) echo "${PREFIX}node:dev" ;;
    *) die "unknown image '$1' (want one of: ${ALL_IMAGES[*]})" ;;
  esac
}

# override IMAGE: the OCTOHA_IMAGE_<IMAGE> value, if set (debian has none:
# it only exists as the base of the others).
override() {
  case $1 in
    node) echo "${OCTOHA_IMAGE_NODE:-}" ;;
    haproxy) echo "${OCTOHA_IMAGE_HAPROXY:-}" ;;
    samba) echo "${OCTOHA_IMAGE_SAMBA:-}" ;;
    postgres) echo "${OCTOHA_IMAGE_POSTGRES:-}" ;;
    *) echo "" ;;
  esac
}

cmd_list() {
  local n
  for n in node haproxy samba postgres; do
    local o
    o=$(override "$n")
    printf 'OCTOHA_IMAGE_%s=%s\n' "${n^^}" "${o:-$(default_name "$n")}"
  done
  printf 'OCTOHA_IMAGE_MSSQL=%s\n' "${OCTOHA_IMAGE_MSSQL:-mcr.microsoft.com/mssql/server:2022-latest}"
}

need_docker() {
  command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed (install docker.io, or run 'make deps' where it provides it)"
  local err
  if ! err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null); then
    die "cannot reach the Docker engine (${err//$'\n'/ }); is dockerd running and may this user use its socket?"
  fi
}

# image_id NAME: the image's ID, or nothing if it does not exist.
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
image_label() { docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

# The apt mirror this machine uses for $SUITE (deb822 .sources or one-line
# .list files); the security archive is found the same way if configured.
apt_uri_for_suite() {
  local suite=$1 f out=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    out+=$(awk -v s="$suite" '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i<=NF && $i !~ /\]$/) i++; i++ } if ($(i+1)==s) { print $i; exit } }' "$f")$'\n'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # Paragraphs are separated by blank lines; take URIs of one whose Types
    # has deb and whose Suites contains the suite.
    out+=$(awk -v s="$suite" '
      function flush() { if (isdeb && hassuite && uri != "") { print uri; found=1; exit } isdeb=0; hassuite=0; uri="" }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/ { for (i=2;i<=NF;i++) if ($i=="deb") isdeb=1 }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i=2;i<=NF;i++) if ($i==s) hassuite=1 }
      END { if (!found) flush() }' "$f")$'\n'
  done
  out=$(printf '%s' "$out" | grep -m1 .) || return 1
  printf '%s\n' "${out%/}"
}

# Resolve the mirror host on this machine: containers do not see this
# machine's /etc/hosts, so builds get it as --add-host when it is listed there.
ADD_HOSTS=()
add_host_for() {
  local host ip
  host=$(printf '%s' "$1" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
  case $host in ''|*[!a-zA-Z0-9.-]*) return 0 ;; esac
  if ip=$(getent hosts "$host" | awk '{print $1; exit}') && [ -n "$ip" ] && grep -qw -- "$host" /etc/hosts 2>/dev/null; then
    ADD_HOSTS+=("--add-host=$host:$ip")
  fi
}

detect_mirrors() {
  MIRROR=${OCTOHA_DEBIAN_MIRROR:-}
  if [ -z "$MIRROR" ]; then
    MIRROR=$(apt_uri_for_suite "$SUITE") || MIRROR=http://deb.debian.org/debian
  fi
  SECURITY_MIRROR=${OCTOHA_DEBIAN_SECURITY_MIRROR:-}
  if [ -z "$SECURITY_MIRROR" ]; then
    SECURITY_MIRROR=$(apt_uri_for_suite "$SUITE-security") || SECURITY_MIRROR=""
  fi
  ADD_HOSTS=()
  add_host_for "$MIRROR"
  [ -z "$SECURITY_MIRROR" ] || add_host_for "$SECURITY_MIRROR"
}

# Files the Debian image carries so that every image built on it installs
# packages from the same mirror, small and without starting services.
finalize_rootfs() {
  local r=$1
  {
    echo "# Written by octoha scripts/images.sh: the mirror the image was bootstrapped from."
    echo "deb $MIRROR $SUITE main"
    echo "deb $MIRROR $SUITE-updates main"
    [ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
  } >"$r/etc/apt/sources.list"
  # Packaged services must not start inside an image build.
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  cat >"$r/etc/apt/apt.conf.d/90octoha" <<'EOF'
// octoha images: small installs, no caches left in layers.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/90octoha-nodoc" <<'EOF'
# octoha images: no documentation, manuals or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  rm -rf "$r"/usr/share/doc/*/[!c]* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/*
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb
  rm -rf "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/* "$r"/debootstrap
  # Docker supplies these at run time.
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
  rm -rf "${r:?}"/dev/*
}

# build_rootfs: debootstrap into a scratch dir under the cache and tar it.
build_rootfs() {
  local tarball=$1
  local debootstrap
  debootstrap=$(PATH=$PATH:/usr/sbin:/sbin command -v "${DEBOOTSTRAP:-debootstrap}") ||
    die "debootstrap is not installed (needed once, to make the Debian root filesystem); run 'make deps' (or apt-get install debootstrap)"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      die "debootstrap needs root (or passwordless sudo) to build $tarball"
    fi
  fi
  mkdir -p "$CACHE_DIR"
  local work
  work=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  # debootstrap mounts proc/sys in the target; never let rm cross into them.
  # shellcheck disable=SC2064
  trap "for m in proc sys dev/pts dev; do $SUDO umount -l '$work/root/'\$m 2>/dev/null || true; done; $SUDO rm -rf --one-file-system '$work'" EXIT
  say "debootstrap --variant=minbase $SUITE from $MIRROR (once; the result is cached in $CACHE_DIR)"
  if ! $SUDO "$debootstrap" --variant=minbase "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.out" 2>&1; then
    tail -n 20 "$work/debootstrap.out" >&2
    [ -r "$work/root/debootstrap/debootstrap.log" ] && tail -n 20 "$work/root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (see above)"
  fi
  for m in proc sys dev/pts; do $SUDO umount -l "$work/root/$m" 2>/dev/null || true; done
  if [ -n "$SUDO" ]; then
    # finalize_rootfs writes root-owned files; run it as root too.
    $SUDO env MIRROR="$MIRROR" SECURITY_MIRROR="$SECURITY_MIRROR" SUITE="$SUITE" \
      bash -c "$(declare -f finalize_rootfs); finalize_rootfs '$work/root'"
  else
    finalize_rootfs "$work/root"
  fi
  $SUDO tar --numeric-owner --one-file-system -C "$work/root" -cf "$work/rootfs.tar" .
  $SUDO chown "$(id -u):$(id -g)" "$work/rootfs.tar"
  mv "$work/rootfs.tar" "$tarball"
  printf '%s\n' "$MIRROR" "$SECURITY_MIRROR" >"$tarball.mirror"
  $SUDO rm -rf --one-file-system "$work"
  trap - EXIT
}

# debian_labels: the OCI labels of the imported Debian image, KEY=VALUE lines
# (the Dockerfiles of the other images carry their own).
debian_labels() {
  local rev
  rev=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  printf '%s\n' \
    "org.opencontainers.image.title=octoha Debian $SUITE" \
    "org.opencontainers.image.description=Minimal Debian $SUITE (debootstrap minbase), apt pointed at the mirror it was built from" \
    "org.opencontainers.image.source=$SOURCE_URL" \
    "org.opencontainers.image.url=$SOURCE_URL/tree/main/docker" \
    "org.opencontainers.image.documentation=$SOURCE_URL/blob/main/docker/README.md" \
    "org.opencontainers.image.vendor=octoha" \
    "org.opencontainers.image.revision=$rev" \
    "org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "octoha.image=1" \
    "octoha.component=debian" \
    "octoha.mirror=$MIRROR"
}

# up_to_date NAME HASH: the image exists, carries this input hash, and FORCE
# is not set.
up_to_date() {
  [ "$FORCE" != 1 ] && [ -n "$(image_id "$1")" ] && [ "$(image_label "$1" octoha.inputs)" = "$2" ]
}

# drop_old OLDID NAME: after NAME moved to a new image, remove the old one if
# nothing else uses it (a rebuild otherwise leaves an untagged image behind).
drop_old() {
  local old=$1 name=$2
  [ -n "$old" ] && [ "$old" != "$(image_id "$name")" ] || return 0
  docker image rm "$old" >/dev/null 2>&1 || true
}

# build_debian FORCE: import the cached root filesystem (made first if
# missing) unless the image exists, was made from the current mirror, and
# FORCE is not 1.
build_debian() {
  local force=$1 name tarball old t0
  name=$(default_name debian)
  tarball=$CACHE_DIR/debian-$SUITE-minbase.tar
  if [ "$force" != 1 ] && [ "$REFRESH_ROOTFS" != 1 ] && [ -n "$(image_id "$name")" ] &&
    [ "$(image_label "$name" octoha.mirror)" = "$MIRROR" ]; then
    say "skip $name: exists (FORCE=1 to rebuild)"
    return 0
  fi
  t0=$SECONDS
  if [ "$REFRESH_ROOTFS" != 1 ] && [ -s "$tarball" ] &&
    [ "$(cat "$tarball.mirror" 2>/dev/null)" != "$(printf '%s\n%s' "$MIRROR" "$SECURITY_MIRROR")" ]; then
    say "cached $tarball was made from another mirror; bootstrapping again"
    REFRESH_ROOTFS=1
  fi
  if [ "$REFRESH_ROOTFS" = 1 ] || [ ! -s "$tarball" ]; then
    build_rootfs "$tarball"
  else
    say "using cached root filesystem $tarball"
  fi
  say "import $name"
  old=$(image_id "$name")
  local changes=() l
  while IFS= read -r l; do changes+=(--change "LABEL ${l%%=*}=\"${l#*=}\""); done < <(debian_labels)
  docker import "${changes[@]}" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV DEBIAN_FRONTEND=noninteractive' \
    --change 'CMD ["/bin/bash"]' \
    --message "octoha: debootstrap --variant=minbase $SUITE $MIRROR" \
    "$tarball" "$name" >/dev/null
  drop_old "$old" "$name"
  say "built $name in $((SECONDS - t0))s"
}

# run_build NAME ARGS...: docker build, quiet unless it fails. --pull=false:
# only local images may be used as bases.
run_build() {
  local name=$1 out
  shift
  if ! out=$(docker build --pull=false --force-rm "$@" 2>&1); then
    printf '%s\n' "$out" | grep -v -e '^DEPRECATED: The legacy builder' -e '^ *BuildKit is currently disabled' \
      -e '^ *environment-variable\.$' -e '^ *Install the buildx component' -e '^ *https://docs.docker.com/go/buildx' | tail -n 40 >&2
    die "docker build of $name failed (output above)"
  fi
}

# inputs_hash FILE...: a hash of the build inputs (names and contents).
inputs_hash() {
  local f
  for f in "$@"; do printf '%s\n' "${f##*/}"; sha256sum <"$f"; done | sha256sum | cut -c1-16
}

# build_args HASH: the dynamic label values the Dockerfiles take as ARGs.
build_args() {
  local rev
  rev=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  printf '%s\n' --build-arg "OCTOHA_REVISION=$rev" \
    --build-arg "OCTOHA_CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --build-arg "OCTOHA_INPUTS=$1"
  # FORCE=1 means fresh packages too, not the builder's cached layers.
  [ "$FORCE" != 1 ] || printf '%s\n' --no-cache
}

# build_from_debian IMAGE: docker/IMAGE is the build context.
build_from_debian() {
  local img=$1 name base baseid ctx hash old t0
  name=$(default_name "$img")
  base=$(default_name debian)
  baseid=$(image_id "$base")
  [ -n "$baseid" ] || die "$base is missing; build it first (scripts/images.sh debian)"
  ctx=$DOCKER_DIR/$img
  [ -f "$ctx/Dockerfile" ] || die "missing $ctx/Dockerfile"
  local files=()
  mapfile -t files < <(find "$ctx" -type f | LC_ALL=C sort)
  hash=$( { printf '%s\n' "$baseid"; inputs_hash "${files[@]}"; } | sha256sum | cut -c1-16)
  if up_to_date "$name" "$hash"; then
    say "skip $name: up to date (FORCE=1 to rebuild)"
    return 0
  fi
  say "build $name (docker/$img, FROM $base)"
  t0=$SECONDS
  old=$(image_id "$name")
  local args=()
  mapfile -t args < <(build_args "$hash")
  run_build "$name" "${ADD_HOSTS[@]}" --build-arg "BASE=$base" "${args[@]}" -t "$name" "$ctx"
  drop_old "$old" "$name"
  say "built $name in $((SECONDS - t0))s"
}

build_node() {
  local name ctx hash old t0
  name=$(default_name node)
  ctx=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$ctx'" RETURN
  if [ -n "${OCTOHA_NODE_BINARY:-}" ]; then
    [ -x "$OCTOHA_NODE_BINARY" ] || die "OCTOHA_NODE_BINARY=$OCTOHA_NODE_BINARY is not an executable file"
    # FROM scratch has no libc or loader: only a static binary runs there.
    if command -v file >/dev/null 2>&1 && ! file -L "$OCTOHA_NODE_BINARY" | grep -q 'statically linked'; then
      die "OCTOHA_NODE_BINARY=$OCTOHA_NODE_BINARY is not statically linked (build it with CGO_ENABLED=0)"
    fi
    say "using prebuilt $OCTOHA_NODE_BINARY for $name"
    cp "$OCTOHA_NODE_BINARY" "$ctx/octoha"
  else
    say "go build (static) ./cmd/octoha for $name"
    (cd "$REPO_ROOT" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$ctx/octoha" ./cmd/octoha) ||
      die "go build ./cmd/octoha failed (in $REPO_ROOT)"
  fi
  # FROM scratch has no /tmp: an empty sticky world-writable one is copied in
  # as rootfs/tmp (copying its parent keeps the mode).
  mkdir -p "$ctx/rootfs"
  mkdir -m 1777 "$ctx/rootfs/tmp"
  chmod 1777 "$ctx/rootfs/tmp"
  cp "$DOCKER_DIR/node/Dockerfile" "$ctx/Dockerfile"
  hash=$(inputs_hash "$ctx/Dockerfile" "$ctx/octoha")
  if up_to_date "$name" "$hash"; then
    say "skip $name: up to date with that binary (FORCE=1 to rebuild)"
    return 0
  fi
  say "build $name (FROM scratch)"
  t0=$SECONDS
  old=$(image_id "$name")
  local args=()
  mapfile -t args < <(build_args "$hash")
  run_build "$name" "${args[@]}" -t "$name" "$ctx"
  drop_old "$old" "$name"
  say "built $name in $((SECONDS - t0))s"
}

cmd_build() {
  local want=("$@") img o
  [ ${#want[@]} -gt 0 ] || want=("${ALL_IMAGES[@]}")
  for img in "${want[@]}"; do default_name "$img" >/dev/null; done
  need_docker
  detect_mirrors
  local t0=$SECONDS
  # Debian is the base of three images; build it first if any of them is wanted.
  # FORCE rebuilds it only when it was asked for (a new Debian image makes
  # the images built on it stale).
  local need_debian=0 debian_force=0
  for img in "${want[@]}"; do
    case $img in
      debian) need_debian=1; debian_force=$FORCE ;;
      haproxy|samba|postgres) [ -n "$(override "$img")" ] || need_debian=1 ;;
    esac
  done
  [ $need_debian = 0 ] || build_debian "$debian_force"
  for img in "${want[@]}"; do
    [ "$img" != debian ] || continue
    o=$(override "$img")
    if [ -n "$o" ]; then
      say "skip $img: OCTOHA_IMAGE_${img^^}=$o is set, so that image is used instead of a local build"
      continue
    fi
    case $img in
      node) build_node ;;
      *) build_from_debian "$img" ;;
    esac
  done
  say "done in $((SECONDS - t0))s"
  docker images --filter label=octoha.image=1 --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    awk -v p="$PREFIX" 'index($1, p) == 1 { printf "  %-34s %s\n", $1, $2 }' || true
}

# ---- verify: run each image briefly on a private network ----------------

VERIFY_IDS=()
VERIFY_NET=""
VERIFY_TMP=""
verify_cleanup() {
  local id
  for id in "${VERIFY_IDS[@]}"; do docker rm -f "$id" >/dev/null 2>&1 || true; done
  [ -z "$VERIFY_NET" ] || docker network rm "$VERIFY_NET" >/dev/null 2>&1 || true
  [ -z "$VERIFY_TMP" ] || rm -rf "$VERIFY_TMP"
}

# wait_log ID TEXT COUNT SECONDS: until TEXT appears COUNT times in the logs.
wait_log() {
  local id=$1 text=$2 count=$3 deadline=$((SECONDS + $4)) n
  while [ $SECONDS -lt "$deadline" ]; do
    n=$(docker logs "$id" 2>&1 | grep -cF -- "$text" || true)
    [ "$n" -lt "$count" ] || return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$id")" = true ] || { docker logs "$id" 2>&1 | tail -n 20 >&2; return 1; }
    sleep 0.2
  done
  docker logs "$id" 2>&1 | tail -n 20 >&2
  return 1
}

# host_port ID PORT: the 127.0.0.1 port Docker published for PORT/tcp.
host_port() { docker port "$1" "$2/tcp" | awk -F: '/^127\.0\.0\.1:/ { print $2; exit }'; }

# no_secret ID SECRET: the container's logs do not contain SECRET.
no_secret() {
  if docker logs "$1" 2>&1 | grep -qF -- "$2"; then die "$3: a password appears in the container's logs"; fi
}

# run_bg NAME ARGS...: docker run -d on the private network; the container
# ID goes to RUN_ID and the cleanup list.
RUN_ID=""
run_bg() {
  local what=$1
  shift
  RUN_ID=$(docker run -d --network "$VERIFY_NET" "$@") || die "$what: docker run failed"
  VERIFY_IDS+=("$RUN_ID")
}

verify_haproxy() {
  local name=$1 id port deadline body=""
  cat >"$VERIFY_TMP/haproxy.cfg" <<'EOF2'
global
  log stdout format raw local0
defaults
  mode http
  log global
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend fe
  bind :8080
  http-request return status 200 content-type text/plain string "octoha-haproxy-ok"
EOF2
  chmod 644 "$VERIFY_TMP/haproxy.cfg"
  run_bg haproxy -p 127.0.0.1::8080 -v "$VERIFY_TMP/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" "$name"
  id=$RUN_ID
  port=$(host_port "$id" 8080)
  deadline=$((SECONDS + 20))
  while [ $SECONDS -lt "$deadline" ]; do
    body=$(curl -fsS -m 2 "http://127.0.0.1:$port/" 2>/dev/null) && break
    sleep 0.2
  done
  [ "$body" = octoha-haproxy-ok ] || { docker logs "$id" 2>&1 | tail >&2; die "haproxy: no answer on 127.0.0.1:$port"; }
  docker stop -t 5 "$id" >/dev/null
  say "ok $name: answered through a published port; stopped with exit code $(docker inspect -f '{{.State.ExitCode}}' "$id")"
}

verify_samba() {
  local name=$1 id port pw auth
  command -v smbclient >/dev/null 2>&1 || { say "cannot verify $name: smbclient is not installed (make deps)"; return 1; }
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  # The password reaches docker and smbclient through the environment and a
  # 0600 file, never a command line.
  SMB_PASSWORD=$pw run_bg samba -p 127.0.0.1::445 -e SMB_USER=octoha -e SMB_PASSWORD "$name"
  id=$RUN_ID
  wait_log "$id" "smbd is listening on port 445" 1 30 || die "samba: smbd did not start"
  port=$(host_port "$id" 445)
  auth=$VERIFY_TMP/smb.auth
  (umask 077; printf 'username = octoha\npassword = %s\n' "$pw" >"$auth")
  printf 'octoha %s\n' "$pw" | sha256sum >"$VERIFY_TMP/up.txt"
  smbclient "//127.0.0.1/octoha" -p "$port" -A "$auth" -m SMB3 \
    -c "put $VERIFY_TMP/up.txt up.txt; get up.txt $VERIFY_TMP/down.txt" >/dev/null 2>&1 ||
    die "samba: smbclient put/get as octoha failed"
  cmp -s "$VERIFY_TMP/up.txt" "$VERIFY_TMP/down.txt" || die "samba: file read back differs"
  if smbclient "//127.0.0.1/octoha" -p "$port" -A "$auth" -m NT1 -c ls >/dev/null 2>&1; then
    die "samba: SMB1 (NT1) was accepted; want SMB2+ only"
  fi
  if smbclient "//127.0.0.1/octoha" -p "$port" -N -c ls >/dev/null 2>&1; then
    die "samba: anonymous access was accepted"
  fi
  # Restart: the user exists already, the file must still be there.
  docker restart -t 5 "$id" >/dev/null
  wait_log "$id" "smbd is listening on port 445" 2 30 || die "samba: smbd did not start again after a restart"
  port=$(host_port "$id" 445)
  smbclient "//127.0.0.1/octoha" -p "$port" -A "$auth" -c "get up.txt $VERIFY_TMP/down2.txt" >/dev/null 2>&1 ||
    die "samba: reading back after a restart failed"
  cmp -s "$VERIFY_TMP/up.txt" "$VERIFY_TMP/down2.txt" || die "samba: file differs after a restart"
  no_secret "$id" "$pw" samba
  say "ok $name: smbclient put/get over SMB3 from the host, SMB1 and anonymous refused, survives a restart"
}

verify_postgres() {
  local name=$1 id port pw out
  command -v psql >/dev/null 2>&1 || { say "cannot verify $name: psql is not installed (make deps)"; return 1; }
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  POSTGRES_PASSWORD=$pw run_bg postgres -p 127.0.0.1::5432 -e POSTGRES_USER=octoha \
    -e POSTGRES_PASSWORD -e POSTGRES_DB=octoha "$name"
  id=$RUN_ID
  wait_log "$id" "database system is ready to accept connections" 2 60 || die "postgres: server did not start"
  port=$(host_port "$id" 5432)
  out=$(PGPASSWORD=$pw PGCONNECT_TIMEOUT=5 psql -X -At "host=127.0.0.1 port=$port user=octoha dbname=octoha sslmode=disable" \
    -c "create table t(x int); insert into t values (42)" \
    -c "select current_user || ' ' || current_database() || ' ' || (select left(rolpassword, 13) from pg_authid where rolname = current_user)" 2>&1) ||
    die "postgres: psql from the host failed: $out"
  [ "$(printf '%s' "$out" | tail -n1)" = "octoha octoha SCRAM-SHA-256" ] || die "postgres: unexpected answer: $out"
  if PGPASSWORD=wrong-$pw PGCONNECT_TIMEOUT=5 psql -X -At "host=127.0.0.1 port=$port user=octoha dbname=octoha sslmode=disable" -c "select 1" >/dev/null 2>&1; then
    die "postgres: a wrong password was accepted"
  fi
  docker restart -t 10 "$id" >/dev/null
  wait_log "$id" "database system is ready to accept connections" 3 60 || die "postgres: server did not start again after a restart"
  port=$(host_port "$id" 5432)
  out=$(PGPASSWORD=$pw PGCONNECT_TIMEOUT=5 psql -X -At "host=127.0.0.1 port=$port user=octoha dbname=octoha sslmode=disable" -c "select x from t" 2>&1) ||
    die "postgres: psql after a restart failed: $out"
  [ "$out" = 42 ] || die "postgres: data lost across a restart: $out"
  no_secret "$id" "$pw" postgres
  say "ok $name: psql from the host with scram-sha-256, wrong password refused, data survives a restart"
}

verify_node() {
  local name=$1 out rc=0 id
  out=$(docker run --rm --network "$VERIFY_NET" "$name" --help 2>&1) || rc=$?
  case $out in
    *"not implemented yet"*) say "ok $name: the binary runs (the node subcommand says: not implemented yet)" ;;
    *)
      [ $rc = 0 ] || { printf '%s\n' "$out" | tail -n 20 >&2; die "node: --help exited $rc"; }
      printf '%s\n' "$out" | sed -n '1,5s/^/    /p'
      say "ok $name: --help printed its usage" ;;
  esac
  id=$(docker create "$name") || die "node: docker create failed"
  VERIFY_IDS+=("$id")
  docker export "$id" | tar -tvf - | grep -qE '^drwxrwxrwt .* tmp/$' || die "node: /tmp is missing or not mode 1777"
}

cmd_verify() {
  local want=("$@") img name failed=0
  [ ${#want[@]} -gt 0 ] || want=(haproxy samba postgres node)
  need_docker
  trap verify_cleanup EXIT
  VERIFY_TMP=$(mktemp -d)
  VERIFY_NET=$(docker network create "octoha-verify-$$") || die "cannot create a docker network"
  for img in "${want[@]}"; do
    [ "$img" != debian ] || continue
    name=$(override "$img")
    name=${name:-$(default_name "$img")}
    [ -n "$(image_id "$name")" ] || die "$name does not exist; build it first (make images)"
    "verify_$img" "$name" || failed=1
  done
  [ $failed = 0 ] || die "some images could not be verified (see above)"
}

cmd_clean() {
  need_docker
  local ref any=0
  while IFS= read -r ref; do
    case $ref in "$PREFIX"*) ;; *) continue ;; esac
    say "remove $ref"
    docker image rm "$ref" >/dev/null || say "could not remove $ref (a container still uses it?)"
    any=1
  done < <(docker images --filter label=octoha.image=1 --format '{{.Repository}}:{{.Tag}}')
  [ $any = 1 ] || say "no images under $PREFIX to remove"
  say "the cached root filesystem stays in $CACHE_DIR (remove it by hand if wanted)"
}

case ${1:-build} in
  build) shift $(( $# > 0 ? 1 : 0 )); cmd_build "$@" ;;
  list) cmd_list ;;
  verify) shift; cmd_verify "$@" ;;
  clean) cmd_clean ;;
  -h|--help|help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" ;;
  *) cmd_build "$@" ;;
esac
