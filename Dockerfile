# deskpool control plane image: the API (apps/api) and the scheduler worker run from it with
# different commands (see docker-compose.yml). The agent is not in it: it runs on each office PC.

# ---- build: install everything, generate the Prisma client, compile TypeScript -------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/db/package.json packages/db/
COPY packages/kvm-driver/package.json packages/kvm-driver/
COPY packages/scheduler/package.json packages/scheduler/
COPY packages/cli/package.json packages/cli/
COPY apps/api/package.json apps/api/
COPY apps/agent/package.json apps/agent/
COPY packages/simulator/package.json packages/simulator/
COPY packages/e2e/package.json packages/e2e/
COPY packages/chaos/package.json packages/chaos/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json prisma.config.ts ./
COPY prisma prisma
COPY packages packages
COPY apps apps
# Prisma's schema engine cannot be downloaded everywhere and is not needed: deskpool applies its
# own SQL migrations; `prisma generate` alone is pure wasm.
ENV PRISMA_SCHEMA_ENGINE_BINARY=/bin/false
RUN npx prisma generate && npx tsc -b \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled output and production dependencies only -----------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules node_modules
# packages/db's migration runner reads prisma/migrations (the API applies them when it starts).
COPY --from=build /app/prisma/migrations prisma/migrations
COPY --from=build /app/packages/protocol/package.json packages/protocol/
COPY --from=build /app/packages/protocol/dist packages/protocol/dist
COPY --from=build /app/packages/db/package.json packages/db/
COPY --from=build /app/packages/db/dist packages/db/dist
COPY --from=build /app/packages/kvm-driver/package.json packages/kvm-driver/
COPY --from=build /app/packages/kvm-driver/dist packages/kvm-driver/dist
COPY --from=build /app/packages/scheduler/package.json packages/scheduler/
COPY --from=build /app/packages/scheduler/dist packages/scheduler/dist
COPY --from=build /app/packages/cli/package.json packages/cli/
COPY --from=build /app/packages/cli/dist packages/cli/dist
COPY --from=build /app/apps/api/package.json apps/api/
COPY --from=build /app/apps/api/dist apps/api/dist
# The dashboard's page files are read from beside the sources (tsc does not copy them into dist/).
COPY --from=build /app/apps/api/src/dashboard/static apps/api/src/dashboard/static
# `docker compose exec api deskpool ...` for admin work inside the deployment.
RUN ln -s /app/packages/cli/dist/main.js /usr/local/bin/deskpool && chmod +x /app/packages/cli/dist/main.js
USER node
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "apps/api/dist/main.js"]
