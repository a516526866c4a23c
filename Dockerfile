# ioasd container image.
#   docker build -t ioasd .
#   docker run -p 8080:8080 -v ioasd-data:/data ioasd
# Both stages use the same base so the native better-sqlite3 addon built in
# `build` matches the Node ABI and glibc of `runtime`. Node 24 is the active LTS
# line; the major version is pinned and the image tag gets patch updates.

# ---------------------------------------------------------------- build stage
FROM node:24-bookworm-slim AS build

# Toolchain for node-gyp: better-sqlite3 is compiled from source, not fetched
# as a prebuilt binary.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# build_from_source: prebuild-install skips its download and falls back to
# `node-gyp rebuild`. nodedir: the official image ships the Node headers under
# /usr/local/include/node, so node-gyp needs no header download either.
# NODE_ENV stays unset in this stage: with production, npm ci would skip the
# devDependencies (typescript) that the build needs.
ENV npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local

# Manifests first so the dependency layer is cached until they change.
COPY package.json package-lock.json ./
RUN npm ci

COPY tsconfig.json tsconfig.build.json ./
# The build copies the topology page's static files (src/http/ui) into dist with this script.
COPY scripts/copy-ui.mjs ./scripts/
COPY src ./src
# Compile, then drop devDependencies; the compiled addon in node_modules stays.
RUN npm run build \
 && npm prune --omit=dev

# -------------------------------------------------------------- runtime stage
FROM node:24-bookworm-slim AS runtime

ENV NODE_ENV=production \
    IOASD_HOST=0.0.0.0 \
    IOASD_PORT=8080 \
    IOASD_DB=/data/ioasd.db

WORKDIR /app

# App files stay owned by root, so the `node` user can read but not change them.
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numbered .sql files read at start-up from <app>/migrations.
COPY migrations ./migrations
# The OpenAPI document ioasctl (dist/cli/ioasctl.js) builds its commands from.
COPY openapi ./openapi

# The DB and admin.token are written here. Create and chown it before VOLUME
# so that a new named volume starts with this ownership.
RUN mkdir -p /data && chown node:node /data
VOLUME /data

USER node

EXPOSE 8080

# The slim image has no curl/wget: use Node's built-in fetch. 127.0.0.1 rather
# than localhost, which may resolve to ::1 while the server listens on IPv4.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.IOASD_PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec form: node runs as PID 1 and gets SIGTERM/SIGINT directly (ioasd
# handles them and starts no child processes, so no init is needed). The
# young-generation sizes are npm start's: ioasd keeps millions of long-lived
# mapping objects, and a larger nursery from the start cuts restart time.
CMD ["node", "--min-semi-space-size=16", "--max-semi-space-size=64", "dist/main.js"]
