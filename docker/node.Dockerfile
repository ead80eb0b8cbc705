# The dev IdP and the demo API for docker-compose (development only).
FROM node:20-bookworm-slim
WORKDIR /app
COPY scripts/dev-idp/package.json scripts/dev-idp/package-lock.json ./scripts/dev-idp/
RUN npm ci --prefix scripts/dev-idp --omit=dev
COPY scripts/dev-idp ./scripts/dev-idp
COPY scripts/demo-api ./scripts/demo-api
USER 1000
