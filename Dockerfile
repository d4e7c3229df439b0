# Multi-stage build of the maintainpro binaries.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin maintainpro --bin maintainpro-edge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/maintainpro /src/target/release/maintainpro-edge /usr/local/bin/
EXPOSE 8080 1883
CMD ["maintainpro", "up"]
