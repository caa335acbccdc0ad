# syntax=docker/dockerfile:1.7
# bgp-intent node speaker image. Build from the repository root (BuildKit, Docker >= 23):
#   docker build -f docker/speaker.Dockerfile -t ghcr.io/bgp-intent/speaker:<version> .
# docker/speaker.Dockerfile.dockerignore keeps target/ and .git/ out of the context.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p bgpintent-speaker \
    && install -D -m 0755 target/release/bgp-intent-speaker /out/bgp-intent-speaker

# Why debian-slim and not distroless: the speaker runs as a non-root user and must listen on
# TCP 179. Kubernetes cannot give a non-root process an effective capability (no ambient
# capabilities in the Pod API), so the binary carries the file capability
# cap_net_bind_service=+ep. Setting it needs setcap in the final image's build: builders
# disagree on whether COPY --from keeps the security.capability xattr, so it is set here, in the
# same layer that installs the binary, and checked. No other capability is needed: TCP_MD5SIG,
# IP_TTL/IPV6_UNICAST_HOPS and IP_MINTTL/IPV6_MINHOPCOUNT on the speaker's own sockets are not
# capability-checked by Linux.
FROM debian:12-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# libcap2-bin is only used to set the capability and is purged in the same layer, so pinning
# its Debian revision (DL3008) would only break the build at the next point release.
# hadolint ignore=DL3008
RUN --mount=type=bind,from=build,source=/out,target=/out \
    apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap2-bin \
    && install -m 0755 /out/bgp-intent-speaker /usr/local/bin/bgp-intent-speaker \
    && setcap cap_net_bind_service=+ep /usr/local/bin/bgp-intent-speaker \
    && getcap /usr/local/bin/bgp-intent-speaker | grep -q cap_net_bind_service \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
# Same numeric user as distroless' "nonroot"; the chart sets runAsUser 65532 too.
USER 65532:65532
# /healthz, /readyz, /metrics on the host network (--metrics-addr 0.0.0.0:9473 in the chart).
EXPOSE 179 9473
ENTRYPOINT ["/usr/local/bin/bgp-intent-speaker"]
CMD ["run"]
