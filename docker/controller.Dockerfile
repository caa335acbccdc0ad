# syntax=docker/dockerfile:1.7
# bgp-intent controller image, for a release pipeline that can pull from a registry. Build from
# the repository root (BuildKit, Docker >= 23):
#   docker build -f docker/controller.Dockerfile -t ghcr.io/bgp-intent/controller:<version> .
# docker/controller.Dockerfile.dockerignore keeps target/ and .git/ out of the context.
# Without a registry, scripts/images assembles the same image with buildah and runs it
# (docs/install.md, "Images").

FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# A static, stripped binary (profile "image"): the image has no libc. +crt-static needs an
# explicit --target (the builder's own), which also keeps RUSTFLAGS off build scripts. The
# binary is copied out of the target cache mount in the same step, with the two files a
# FROM scratch image needs for the numeric user 65532 ("nonroot", as distroless).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    target="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --profile image \
        --target "$target" --bin bgp-intent-controller \
    && install -D -m 0755 "target/$target/image/bgp-intent-controller" /rootfs/usr/local/bin/bgp-intent-controller \
    && install -d -m 0755 /rootfs/etc \
    && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >/rootfs/etc/passwd \
    && echo 'nonroot:x:65532:' >/rootfs/etc/group

# Nothing but the binary, /etc/passwd and /etc/group. No CA bundle: the client trusts the
# cluster's CA (service account ca.crt, or the kubeconfig's certificate-authority).
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="bgp-intent-controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/bgp-intent/bgp-intent" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /rootfs/ /
USER 65532:65532
# /healthz, /readyz, /metrics (--metrics-addr 0.0.0.0:8080 in the chart).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bgp-intent-controller"]
CMD ["run"]
