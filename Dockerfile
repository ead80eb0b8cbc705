# Shroud container image: build with the Rust image, run on slim Debian as a non-root user.
# Configuration comes from a mounted file (SHROUD_CONFIG) and SHROUD__SECTION__KEY environment variables.
#   docker build -t shroud .
#   docker run -p 8080:8080 -v "$PWD/config:/etc/shroud:ro" -e SHROUD__INTROSPECTION__CLIENT_SECRET=… \
#     -e SHROUD__PHANTOM__SIGNING_KEY_FILE=/etc/shroud/keys/phantom-es256.pem shroud

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml openapi.yaml ./
COPY src ./src
COPY tests/testkit ./tests/testkit
COPY vendor ./vendor
RUN cargo build --release --locked --bin shroud

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin shroud
COPY --from=build /src/target/release/shroud /usr/local/bin/shroud
COPY config/shroud.toml /etc/shroud/shroud.toml
ENV SHROUD_CONFIG=/etc/shroud/shroud.toml \
    SHROUD__SERVER__LISTEN=0.0.0.0:8080 \
    RUST_LOG=info
USER 10001
EXPOSE 8080
# `shroud healthcheck` reads the same configuration as `serve` (SHROUD_CONFIG and the SHROUD__* variables,
# so it follows SHROUD__SERVER__LISTEN and [server.tls]) and asks /healthz on loopback: no curl, no shell.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/shroud", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/shroud"]
CMD ["serve"]
