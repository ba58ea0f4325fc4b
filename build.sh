#!/usr/bin/env bash
# Builds the flota-master, flota-worker, flota-worker-gpu and flota-worker-python
# images and pushes them to $REGISTRY.
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/deploy/lib.sh"

usage() {
  cat <<USAGE
Usage: ./build.sh [--no-push] [--print-tag] [--help]

Builds the images from the Dockerfile (targets master, worker, worker-gpu
and worker-python) and pushes them to \$REGISTRY:

  \$REGISTRY/flota-master:<version>-<sha>          (also the autoscaler's)
  \$REGISTRY/flota-worker:<version>-<sha>          (CPU workers)
  \$REGISTRY/flota-worker-gpu:<version>-<sha>      (GPU workers: with CUDA binaries)
  \$REGISTRY/flota-worker-python:<version>-<sha>   (the Python worker, workers/python)

<version> is package.json's version; <sha> is the git commit (12 digits),
with "-dirty" when the image's inputs differ from that commit: the
Dockerfile, .dockerignore and the paths .dockerignore lets into the build
(changed or untracked files there). Changes elsewhere (stack.yml, docs,
tests) leave the tag alone. A clean build is also tagged :<version>.
deploy.sh deploys the <version>-<sha> tag of the current checkout unless TAG
says otherwise, and first checks that the registry has it.

Options:
  --no-push     build and tag only (REGISTRY may then be unset: local names)
  --print-tag   print <version>-<sha> and exit
  -h, --help    this text

Environment:
  REGISTRY      registry and path prefix, e.g. registry.example.com:5000/flota
  TAG           use this tag instead of <version>-<sha>
  PLATFORM      passed to docker build --platform (e.g. linux/amd64)
  BUILD_NETWORK passed to docker build --network (e.g. host, where the build's
                npm ci cannot reach the registry through Docker's bridge)
  ROLES         the images to build and push, of: master worker worker-gpu
                worker-python (all four unless set)
USAGE
}

push=1
print_tag=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-push) push=0 ;;
    --print-tag) print_tag=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

# Git pathspecs of what the images are built from: the Dockerfile,
# .dockerignore, and what .dockerignore lets in ("!path"), minus what it
# then leaves out again (e.g. **/*.test.ts).
image_inputs() {
  local line
  printf '%s\n' Dockerfile .dockerignore
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      '' | '#'* | '*') ;;
      '!'*) printf '%s\n' "${line#!}" ;;
      *) printf ':(exclude,glob)%s\n' "$line" ;;
    esac
  done <"$ROOT/.dockerignore"
}

moving_tag=""
version=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$ROOT/package.json")
[ -n "$version" ] || die "cannot read the version from $ROOT/package.json"
if [ -z "${TAG:-}" ]; then
  need git
  sha=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null) ||
    die "not a git checkout: set TAG to name the images"
  inputs=()
  while IFS= read -r input; do inputs+=("$input"); done < <(image_inputs)
  changes=$(git -C "$ROOT" status --porcelain --untracked-files=normal -- "${inputs[@]}") ||
    die "git status failed in $ROOT"
  if [ -n "$changes" ]; then
    sha="$sha-dirty"
  else
    # The plain version tag moves only with builds of a clean commit.
    moving_tag=$version
  fi
  TAG="$version-$sha"
fi
[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "TAG '$TAG' is not a valid image tag"

if [ "$print_tag" = 1 ]; then
  echo "$TAG"
  exit 0
fi

need docker
if [ "$push" = 1 ] && [ -z "${REGISTRY:-}" ]; then
  die "set REGISTRY (e.g. REGISTRY=registry.example.com:5000/flota), or pass --no-push"
fi
prefix=${REGISTRY:+${REGISTRY%/}/}

all_roles="master worker worker-gpu worker-python"
read -r -a roles <<<"${ROLES:-$all_roles}"
[ ${#roles[@]} -gt 0 ] || die "ROLES names no image (of: $all_roles)"
for role in "${roles[@]}"; do
  case "$role" in
    master | worker | worker-gpu | worker-python) ;;
    *) die "ROLES: no image '$role' (of: $all_roles)" ;;
  esac
done

args=(--build-arg "VERSION=$version" --build-arg "GIT_SHA=${sha:-$TAG}")
[ -z "${PLATFORM:-}" ] || args+=(--platform "$PLATFORM")
[ -z "${BUILD_NETWORK:-}" ] || args+=(--network "$BUILD_NETWORK")

for role in "${roles[@]}"; do
  image="${prefix}flota-$role"
  note "building $image:$TAG"
  tags=(--tag "$image:$TAG")
  [ -z "$moving_tag" ] || tags+=(--tag "$image:$moving_tag")
  DOCKER_BUILDKIT=1 docker build "${args[@]}" "${tags[@]}" --target "$role" "$ROOT"
done

if [ "$push" = 1 ]; then
  for role in "${roles[@]}"; do
    for tag in "$TAG" $moving_tag; do
      note "pushing ${prefix}flota-$role:$tag"
      docker push "${prefix}flota-$role:$tag"
    done
  done
fi
echo "$TAG"
