# syntax=docker/dockerfile:1.7
# bgp-intent node speaker image, for a release pipeline that can pull from a registry. Build
# from the repository root (BuildKit, Docker >= 23):
#   docker build -f docker/speaker.Dockerfile -t ghcr.io/bgp-intent/speaker:<version> .
# docker/speaker.Dockerfile.dockerignore keeps target/ and .git/ out of the context.
# Without a registry, scripts/images assembles the same image with buildah and runs it
# (docs/install.md, "Images").

FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# libcap2-bin (setcap) only exists in this stage; pinning its Debian revision (DL3008) would
# only break the build at the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# A static, stripped binary (profile "image"): the image has no libc. +crt-static needs an
# explicit --target (the builder's own), which also keeps RUSTFLAGS off build scripts.
#
# The speaker runs as uid 65532 and listens on TCP 179. The Pod API has no ambient
# capabilities, so the NET_BIND_SERVICE the chart adds reaches the process only through the
# file capability cap_net_bind_service=+ep on the binary, set here and checked. With
# allowPrivilegeEscalation: false (no_new_privs) that still works, because the runtime has put
# NET_BIND_SERVICE into the permitted set before execve (see the chart's comment).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    target="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --profile image \
        --target "$target" --bin bgp-intent-speaker \
    && install -D -m 0755 "target/$target/image/bgp-intent-speaker" /rootfs/usr/local/bin/bgp-intent-speaker \
    && setcap cap_net_bind_service=+ep /rootfs/usr/local/bin/bgp-intent-speaker \
    && getcap /rootfs/usr/local/bin/bgp-intent-speaker | grep -q 'cap_net_bind_service=ep' \
    && install -d -m 0755 /rootfs/etc \
    && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >/rootfs/etc/passwd \
    && echo 'nonroot:x:65532:' >/rootfs/etc/group

# Nothing but the binary, /etc/passwd and /etc/group. BuildKit's COPY copies extended
# attributes after ownership (tonistiigi/fsutil), so security.capability survives into this
# stage; the legacy builder dropped it (moby/moby#38132). Check a release image with getcap
# on its unpacked layer, as scripts/images does for the buildah image.
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="bgp-intent-speaker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/bgp-intent/bgp-intent" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /rootfs/ /
USER 65532:65532
# BGP, and /healthz, /readyz, /metrics on the host network (--metrics-addr 0.0.0.0:9473).
EXPOSE 179 9473
ENTRYPOINT ["/usr/local/bin/bgp-intent-speaker"]
CMD ["run"]
