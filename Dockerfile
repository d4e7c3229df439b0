# Multi-stage build: the web UI (Node), the maintainpro binaries (Rust), and a
# slim runtime image serving the UI from /usr/share/maintainpro/web.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin maintainpro --bin maintainpro-edge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/maintainpro /src/target/release/maintainpro-edge /usr/local/bin/
COPY --from=web /web/dist /usr/share/maintainpro/web
ENV MP_WEB_DIR=/usr/share/maintainpro/web
EXPOSE 8080 1883
CMD ["maintainpro", "up"]
