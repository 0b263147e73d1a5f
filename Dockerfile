# syntax=docker/dockerfile:1
# The phi-gateway image: built with the dev toolchain, run as an unprivileged user on a read-only root
# filesystem with all state in the /data volume. No secret is ever baked in: first-run secrets are made in /data.
#
#   docker build -t phi-gateway .
#   docker run -d --name phigw --read-only --tmpfs /tmp -v phigw-data:/data \
#     -p 2525:2525 -p 8080:8080 -e PHIGW_RELAY_URL=smtp://smtp.example.net:587 phi-gateway
# See docs/deploy.md. test/deploy/dockerfile.test.ts runs these steps outside Docker.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: full dependencies, TypeScript compile -------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# Compilers for better-sqlite3 when its prebuilt binary cannot be downloaded; this stage is thrown away.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own "prepare" (tsc) would run before the sources are here; the one
# dependency that needs its install script is rebuilt explicitly.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY . .
RUN npm run build && rm -rf dist/test dist/bench dist/scripts dist/.tsbuildinfo

# --- deps: production dependencies only -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3 && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PHIGW_DATA_DIR=/data \
    PHIGW_SMTP_HOST=0.0.0.0 \
    PHIGW_SMTP_PORT=2525 \
    PHIGW_WEB_HOST=0.0.0.0 \
    PHIGW_WEB_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin/phi-gateway.js ./bin/phi-gateway.js
COPY --from=build /src/dist ./dist
COPY --from=build /src/config/dlp-rules.yaml ./config/dlp-rules.yaml
COPY --from=build /src/config/phi-gateway.example.yaml ./config/phi-gateway.example.yaml
COPY --from=build /src/web/static ./web/static
# The only writable place. The image's "node" user (uid 1000) owns it; nothing under /app is writable.
RUN mkdir -p /data && chown node:node /data && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 2525 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PHIGW_WEB_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "bin/phi-gateway.js", "start"]
