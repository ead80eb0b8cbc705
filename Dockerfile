# Shroud container image. (The Docker story — demo compose file, image tests — is a later issue;
# this builds and runs the binary.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shroud

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 shroud
COPY --from=build /src/target/release/shroud /usr/local/bin/shroud
COPY config/shroud.toml /etc/shroud/shroud.toml
USER shroud
ENV SHROUD_CONFIG=/etc/shroud/shroud.toml
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/shroud"]
CMD ["serve"]
