# syntax=docker/dockerfile:1
# sts-webhook: a static (musl) binary on distroless/static, running as non-root.
#
#   docker build -t sts-webhook:dev .
#   kind load docker-image sts-webhook:dev      # for a kind cluster
#
# Build stage: Alpine's Rust targets musl natively, so the release binary is fully static.
FROM rust:1.89-alpine AS build
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
# The whole workspace: Cargo needs every member's manifest to resolve the lockfile.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sts-webhook \
    && cp target/release/sts-webhook /sts-webhook

# Runtime: no shell, no package manager; CA certificates and a nonroot user (65532) included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /sts-webhook /usr/local/bin/sts-webhook
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/sts-webhook"]
