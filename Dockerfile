# The predex server as a container: built with the workspace's toolchain, run as a non-root
# user from a small image that holds the `server` binary only.
#
#   docker build -t predex-server .
#   docker run -p 8080:8080 -v predex-data:/var/lib/predex/data \
#     -e JWT_SECRET="$(openssl rand -hex 32)" -e COOKIE_SECURE=true predex-server
#
# With no DATABASE_URL the exchange keeps its embedded SQLite database on the volume. SIGTERM
# (`docker stop`) is the graceful shutdown: requests finish, the queue is committed, a final
# snapshot is stored. The development machines of this project have no Docker engine; `.ci/run`
# runs this file's build command and starts the binary the way this image does (an empty data
# directory, a non-root user, production settings).

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p server --bin server

FROM debian:bookworm-slim
# curl for the health check; pg_dump/pg_restore of the compose file's PostgreSQL major version
# for `server admin backup`/`restore` (Debian's own client is older than the server).
ARG POSTGRES_MAJOR=16
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc \
        | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg \
    && echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-${POSTGRES_MAJOR}" \
    && apt-get purge -y gnupg && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/predex predex \
    && mkdir -p /var/lib/predex/data \
    && chown predex:predex /var/lib/predex/data
COPY --from=build /src/target/release/server /usr/local/bin/server
USER predex
WORKDIR /var/lib/predex
ENV APP_ENV=production \
    BIND_ADDR=0.0.0.0:8080 \
    DATA_DIR=/var/lib/predex/data \
    LOG_FORMAT=json
VOLUME ["/var/lib/predex/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["server"]
