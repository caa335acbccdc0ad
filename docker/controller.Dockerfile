# syntax=docker/dockerfile:1.7
# bgp-intent controller image. Build from the repository root (BuildKit, Docker >= 23):
#   docker build -f docker/controller.Dockerfile -t ghcr.io/bgp-intent/controller:<version> .
# docker/controller.Dockerfile.dockerignore keeps target/ and .git/ out of the context.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Registry and target caches survive between builds; the binary is copied out of the cache
# mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p bgpintent-controller \
    && install -D -m 0755 target/release/bgp-intent-controller /out/bgp-intent-controller

# glibc + libgcc only, no shell, no package manager; runs as uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bgp-intent-controller /usr/local/bin/bgp-intent-controller
USER 65532:65532
# /healthz, /readyz, /metrics (--metrics-addr 0.0.0.0:8080 in the chart).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bgp-intent-controller"]
CMD ["run"]
