# The API image: the server compiled to JavaScript (packages/*/dist), run by plain Node 24 with
# only the production dependencies; no TypeScript, tsx or dev tools at run time.
FROM node:24-slim AS base
WORKDIR /app
RUN npm install -g pnpm@10
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
COPY packages/core/package.json packages/core/
COPY packages/api/package.json packages/api/
COPY packages/cli/package.json packages/cli/

# Compile: all dependencies (TypeScript), then tsc -b for core and api.
FROM base AS build
RUN pnpm install --frozen-lockfile
COPY tsconfig.base.json ./
COPY packages ./packages
RUN pnpm exec tsc -b packages/api/tsconfig.build.json

# Production dependencies of the API and the core only.
FROM base AS deps
RUN pnpm install --frozen-lockfile --prod --filter @concert/api...

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
COPY --from=deps /app ./
COPY --from=build /app/packages/core/dist packages/core/dist
COPY --from=build /app/packages/api/dist packages/api/dist
EXPOSE 3000
USER node
# --conditions=concert-dist resolves @concert/core to its compiled dist/ (see its package.json).
CMD ["node", "--conditions=concert-dist", "packages/api/dist/main.js"]
