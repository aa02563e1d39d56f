# syntax=docker/dockerfile:1
# anchore-operator container image.
#
#   docker build -t anchore-operator:dev .
#
# Three stages: `build` compiles src/ to dist/ with the full dev toolchain, `prod-deps` installs only the runtime
# dependencies from the same lockfile, and the final stage holds dist/, those node_modules and package.json — nothing
# else (no sources, tests, TypeScript, jest, swc, or the `node` devDependency). The same layout is started and checked
# by test/integration/production-layout.test.ts, so CI proves it runs even where no container engine is available;
# that suite also checks this file's final stage statically.

ARG NODE_VERSION=24

# ---- build: npm ci + tsc -p tsconfig.build.json -> dist/ ---------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the compile needs only TypeScript (plain JavaScript). The lifecycle scripts that allowScripts
# permits exist for development machines: `node` (the devDependency that gives npm scripts Node 24 whatever the
# system Node is) would download a second Node binary, and @swc/core's check is for jest. The image's own Node 24
# runs tsc.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: runtime dependencies only ------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out every devDependency (the `node` package included, so no install script is needed);
# no runtime dependency has an install script, so --ignore-scripts changes nothing but the attack surface.
# The foreign-platform lockfile entries (docs/adr/0004) are all optional dev packages and are skipped.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- final ---------------------------------------------------------------------------------------------------------
# gcr.io/distroless/nodejs24-debian12 rather than node:24-bookworm-slim: the operator needs only the Node runtime, and
# distroless ships just that plus glibc, libssl, CA certificates and tzdata — no shell, no package manager, no npm
# (whose bundled dependencies are a steady source of scanner findings). That is a much smaller attack surface and
# fewer CVEs to triage, and its `nonroot` variant already defines uid/gid 65532. The cost is no shell for debugging;
# use `kubectl debug` with an ephemeral container. Both images are Debian 12 with glibc, so the node_modules built
# in prod-deps run unchanged. Node is /nodejs/bin/node there.
FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="anchore-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps Anchore Enterprise in step with what actually runs in a cluster" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=prod-deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
COPY --chown=0:0 package.json ./
# Files stay owned by root and read-only to the process; the operator writes nothing to its filesystem (run it with
# readOnlyRootFilesystem: true).
USER 65532:65532
# 8080: /metrics (METRICS_PORT), 8081: /healthz and /readyz (HEALTH_PORT).
EXPOSE 8080 8081
# A small young generation and V8's size-optimised mode: at 10,000 pods they cut resident memory from ~410 MiB to
# ~160 MiB for ~20 % more CPU during bursts (docs/performance.md; the benchmark runs the operator with these flags).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "--optimize-for-size", "dist/main.js"]
