# unscharf: build a static-enough binary, run it as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
# pg_query builds Postgres's parser from C and generates its bindings with libclang.
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY sample ./sample
COPY policies ./policies
RUN cargo build --release --locked && strip target/release/unscharf

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/unscharf --create-home unscharf
COPY --from=build /src/target/release/unscharf /usr/local/bin/unscharf
COPY policies /etc/unscharf/policies
COPY deploy/unscharf.compose.yaml /etc/unscharf/unscharf.yaml
USER unscharf
EXPOSE 6432 9930
ENTRYPOINT ["/usr/local/bin/unscharf"]
CMD ["serve", "--config", "/etc/unscharf/unscharf.yaml"]
