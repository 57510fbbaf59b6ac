# syntax=docker/dockerfile:1
#
# Every binary of the shop, built once, in one runtime image with one target per service:
#
#   docker build --target order-svc -t shop/order-svc .
#
# Why one image with per-service targets rather than one Dockerfile per service: the
# five services, the seed job and the console share one Cargo workspace, so a single `cargo build`
# compiles the shared crates (shop-proto, platform, every dependency) once for all of
# them; every target below starts from the same `runtime` stage, so the base layers and
# the layer holding the binaries are stored and pulled once; and each target differs
# only in its entry point, port and health check, which is all a service needs.
# compose.yaml builds each service from its target.

# The workspace's `rust-version` (Cargo.toml), so the image is built with the oldest
# toolchain the workspace claims to support and proves that claim on every image build;
# e2e/tests/compose.rs fails if the two differ. Bump both together. The `rust` official
# image publishes `<major>.<minor>-<debian suite>` tags that follow the latest patch
# release of that minor version (docker-library/official-images, library/rust).
ARG RUST_VERSION=1.94

# Where the runtime stage takes the binaries from: `builder` (the default) compiles them
# from the sources below; `prebuilt` copies release binaries that were built beforehand
# into dist/bin/ of the build context (`scripts/dist`), as a release pipeline that
# builds once and packages many times does, and as scripts/compose-smoke does on machines
# where the Rust builder image cannot be pulled. Either way the binaries are
# `cargo build --release --locked` of this workspace; compose.yaml passes
# SHOP_BINARIES through (`SHOP_BINARIES=prebuilt docker compose build`).
ARG BINARIES=builder

# ---------------------------------------------------------------------------------------
# Builder: the release binaries.
#
# Dependency caching uses BuildKit cache mounts, not a stub-source layer: the cargo
# registry and the target directory persist across builds on the same builder, so a
# source change recompiles only the crates it touches (workspace crates included), and
# nothing here has to mirror the workspace layout. A stub layer would have to recreate
# every member's lib.rs, main.rs, src/bin/*.rs, proto/build.rs with its .proto files and
# each service's migrations/ (sqlx::migrate! embeds them at compile time), and drift as
# soon as a crate gains a target. The trade-off: cache mounts live in the local builder
# and are not exported with image layers, so a CI runner with a fresh builder starts
# cold. No system protoc is needed (shop-proto compiles its .proto files with protox) and
# no OpenSSL either (sqlx is built with tls-none).
#
# Debian 13 "trixie", the current stable release (released 2025-08-09; Debian's release
# page). Debian 12 "bookworm", used before, left regular security support in 2026 and
# is on LTS only. Builder and runtime share the suite so the binaries run against the
# glibc they were linked with; e2e/tests/compose.rs checks that they match.
FROM rust:${RUST_VERSION}-trixie AS builder
WORKDIR /app
# Sources, proto files and migrations; .dockerignore keeps target/ and .git out.
COPY . .
# target/ is a cache mount, so the binaries are copied out within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/app/target,sharing=locked \
    cargo build --release --locked \
        --bin order-svc \
        --bin payment-svc \
        --bin inventory-svc \
        --bin shipping-svc \
        --bin orchestrator \
        --bin shop-seed \
        --bin shop-certs \
        --bin console \
 && mkdir -p /out \
 && cp target/release/order-svc \
       target/release/payment-svc \
       target/release/inventory-svc \
       target/release/shipping-svc \
       target/release/orchestrator \
       target/release/shop-seed \
       target/release/shop-certs \
       target/release/console \
       /out/

# ---------------------------------------------------------------------------------------
# Prebuilt: the same binaries, built outside the image (see BINARIES above). Built only
# when selected: BuildKit and buildah skip stages the target does not use.
FROM scratch AS prebuilt
COPY dist/bin/ /out/

# The stage BINARIES names: `builder` or `prebuilt`.
FROM ${BINARIES} AS binaries

# ---------------------------------------------------------------------------------------
# Runtime: Debian slim (same suite, so the same glibc, as the builder), CA roots, an
# unprivileged user.
FROM debian:trixie-slim AS runtime
# No translations (a mirror may not serve them, and a missing index fails the update) and
# a few retries for a flaky network: the build needs one package.
RUN apt-get -o Acquire::Languages=none -o Acquire::Retries=3 update \
 && apt-get -o Acquire::Retries=3 install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shop
COPY --from=binaries /out/ /usr/local/bin/
# Numeric, so runtimes that check for a non-root user (runAsNonRoot) can verify it.
USER 10001:10001
# The binaries drain in-flight calls on SIGTERM (SHUTDOWN_GRACE, 10s by default) and
# exit 0; give them that long before the SIGKILL (compose: stop_grace_period).
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------
# One target per service. Each listens on all interfaces inside its container (the
# binaries default to 127.0.0.1, which other containers cannot reach) and checks itself
# with its own `healthcheck` subcommand: no curl or grpc_health_probe in the image.

FROM runtime AS order-svc
ENV LISTEN_ADDR=0.0.0.0:50051
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/order-svc", "healthcheck", "--addr", "127.0.0.1:50051"]
ENTRYPOINT ["/usr/local/bin/order-svc"]

FROM runtime AS payment-svc
ENV LISTEN_ADDR=0.0.0.0:50052
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/payment-svc", "healthcheck", "--addr", "127.0.0.1:50052"]
ENTRYPOINT ["/usr/local/bin/payment-svc"]

FROM runtime AS inventory-svc
ENV LISTEN_ADDR=0.0.0.0:50053
EXPOSE 50053
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/inventory-svc", "healthcheck", "--addr", "127.0.0.1:50053"]
ENTRYPOINT ["/usr/local/bin/inventory-svc"]

FROM runtime AS shipping-svc
ENV LISTEN_ADDR=0.0.0.0:50054
EXPOSE 50054
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/shipping-svc", "healthcheck", "--addr", "127.0.0.1:50054"]
ENTRYPOINT ["/usr/local/bin/shipping-svc"]

# One-shot: writes the development PKI (a CA, a certificate per principal, the token
# secret, the console's token) to the volume every service reads its TLS files from;
# keeps the one already there.
FROM runtime AS certs
ENTRYPOINT ["/usr/local/bin/shop-certs"]

# One-shot: upserts the demo catalog (MUG-1, TEE-1, CAP-1) into inventory-svc, exits 0.
FROM runtime AS seed
ENTRYPOINT ["/usr/local/bin/shop-seed"]

# The saga viewer: a web page (HTTP, not gRPC) that is a client of the orchestrator's
# public API; its `healthcheck` subcommand asks its own /healthz.
FROM runtime AS console
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/console", "healthcheck", "--addr", "127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/console"]

# Last, so a plain `docker build .` gives the entry point of the shop.
FROM runtime AS orchestrator
ENV LISTEN_ADDR=0.0.0.0:50050
EXPOSE 50050
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/usr/local/bin/orchestrator", "healthcheck", "--addr", "127.0.0.1:50050"]
ENTRYPOINT ["/usr/local/bin/orchestrator"]
