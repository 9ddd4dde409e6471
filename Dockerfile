# Capsule's container image: a static musl `capsule`, the example plugins, a config, and the
# plugins precompiled at build time, on `scratch` (no shell, no libc, nothing to patch).
#
# Build from the repository root after the inputs exist (docs/deploy.md; `cargo xtask test`
# does all of this):
#   cargo build --profile container --target x86_64-unknown-linux-musl -p capsule
#   cargo xtask plugins
#   mkdir -p target/image && cp /etc/ssl/certs/ca-certificates.crt target/image/
#   DOCKER_BUILDKIT=0 docker build -t capsule .
# Only the classic builder's features are used (no BuildKit), and no base image is pulled.

# Stage 1: precompile every plugin into the cache with the image's own config. `scratch` has
# no shell, so RUN uses the exec form; the binary is static.
FROM scratch AS precompile
COPY target/x86_64-unknown-linux-musl/container/capsule /capsule
COPY target/plugins/ /plugins/
COPY deploy/capsule.toml /etc/capsule/capsule.toml
ENV CAPSULE_CONFIG=/etc/capsule/capsule.toml
RUN ["/capsule", "check"]

# Stage 2: the image. The cache belongs to the user capsule runs as (it refuses a cache folder
# another user owns, since artifacts are native code); everything else is root's and read-only
# to that user. Run it with a read-only root filesystem: nothing is written at run time.
FROM scratch
COPY target/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=precompile /capsule /capsule
COPY --from=precompile /plugins/ /plugins/
COPY --from=precompile /etc/capsule/capsule.toml /etc/capsule/capsule.toml
COPY --from=precompile --chown=65532:65532 /var/cache/capsule/ /var/cache/capsule/
ENV CAPSULE_CONFIG=/etc/capsule/capsule.toml \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/capsule"]
CMD ["serve"]
