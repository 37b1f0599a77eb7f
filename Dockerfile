# meshd: multi-stage build. The final image holds production dependencies and the compiled
# JavaScript only, runs as a non-root user, and listens on the production ports.
#
#   docker build -t meshd .
#   docker run --cap-add NET_BIND_SERVICE -p 53:53/udp -p 53:53/tcp -p 2377:2377 meshd
#   (add --cap-add NET_ADMIN when meshd must put VIPs on an interface)

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npx tsc -p src/api/ui/client/tsconfig.json

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:22-bookworm-slim
# iproute2 for `ip addr add` of VIPs (only used with NET_ADMIN); nftables and conntrack for the
# kernel data plane; libcap2-bin to grant the node binary the one capability it needs to bind
# port 53 as a non-root user, and nft and conntrack theirs (NET_ADMIN, which compose adds).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 libcap2-bin nftables conntrack \
 && setcap cap_net_bind_service=+ep /usr/local/bin/node \
 && setcap cap_net_admin=+ep /usr/sbin/nft \
 && setcap cap_net_admin=+ep /usr/sbin/conntrack \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system meshd && useradd --system --gid meshd --home /var/lib/meshd meshd \
 && mkdir -p /etc/meshd /var/lib/meshd && chown meshd:meshd /var/lib/meshd
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY deploy/meshd.yaml /etc/meshd/meshd.yaml
USER meshd
VOLUME ["/var/lib/meshd"]
# DNS, management API, data plane, metrics.
EXPOSE 53/udp 53/tcp 2377/tcp 4789/tcp 9377/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:2377/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/bin/meshd.js"]
CMD ["--config", "/etc/meshd/meshd.yaml"]
