# syntax=docker/dockerfile:1
# plan-worker: a release build in a Rust image, run from a slim Debian as a
# non-root user. `docker compose up` builds it; alone:
#   docker build -t plan-worker . && docker run --rm plan-worker --help

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a source change does not rebuild
# them. The stub targets are replaced by the real sources below.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --no-default-features \
    && rm -rf src
# Everything the crate compiles in: build script, sources, migrations (sqlx::migrate!),
# data and example profiles (include_str!).
COPY build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY data ./data
COPY examples ./examples
# touch: the stub's build must not look newer than the real sources.
# --no-default-features: the mock LLM, bench, demo and token commands
# (feature dev-tools) are not in the image.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --no-default-features \
    && cp target/release/plan-worker /plan-worker

FROM debian:bookworm-slim AS runtime
# ca-certificates: the LLM and push calls use TLS. No curl: the compose
# health check uses bash's /dev/tcp.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 plan-worker \
    && useradd --system --uid 10001 --gid plan-worker --no-create-home --shell /usr/sbin/nologin plan-worker
COPY --from=build /plan-worker /usr/local/bin/plan-worker
USER 10001:10001
ENV METRICS_ADDR=0.0.0.0:9464 \
    LOG_FORMAT=json \
    RUST_LOG=info
# 9464: /metrics, /healthz, /readyz (internal). 8080: the app API when
# API_ADDR=0.0.0.0:8080 is set.
EXPOSE 9464 8080
ENTRYPOINT ["plan-worker"]
CMD ["run"]
