# syntax=docker/dockerfile:1
# One image for every role; the command picks the entry point:
#   docker run actionedx/platform services/gateway/dist/main.js        (8001)
#   docker run actionedx/platform services/orchestrator/dist/main.js   (8002)
#   docker run actionedx/platform services/mock-llm/dist/main.js       (8090)
#   docker run -p 8001:8001 actionedx/platform                          (embedded: everything in one process)

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- manifests: every package.json (found, not listed) and the lockfile. When only sources change this
# stage's output is identical, so the npm ci layer below stays cached.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path '*/node_modules/*' -exec cp --parents {} /manifests/ \; \
 && cp package-lock.json /manifests/

# ---- build: install everything, compile, then drop the dev dependencies
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=manifests /manifests/ ./
# No install scripts: no runtime dependency needs one, and nothing is fetched at build time but packages.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /out \
 && cp -a package.json package-lock.json node_modules /out/ \
 && for ws in shared services/*; do \
      [ -f "$ws/package.json" ] || continue; \
      mkdir -p "/out/$ws"; \
      cp -a "$ws/package.json" "/out/$ws/"; \
      if [ -d "$ws/dist" ]; then cp -a "$ws/dist" "/out/$ws/"; fi; \
      if [ -d "$ws/public" ]; then cp -a "$ws/public" "/out/$ws/"; fi; \
      if [ -d "$ws/node_modules" ]; then cp -a "$ws/node_modules" "/out/$ws/"; fi; \
    done \
 && find /out -name '*.tsbuildinfo' -delete

# ---- runtime: the services' compiled code (shared, services/*; not testkit or bench), the gateway's web page
# (services/gateway/public, plain files beside its dist/) and production
# dependencies, owned by root, run as `node`
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build /out /app
USER node
# Documentation only: gateway 8001, orchestrator 8002, mock-llm 8090 (each honours PORT).
EXPOSE 8001 8002 8090
# The image has no curl: node asks the role's liveness endpoint on PORT (8001 if unset: set PORT when
# running another role under plain Docker; compose and Kubernetes use their own probes).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8001)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node"]
CMD ["services/embedded/dist/main.js"]
