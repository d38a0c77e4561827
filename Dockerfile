# The one image of every Facteur Node service (smtp-ingress, submission, filter, delivery,
# supervisor), started with a different command each (docker-compose.yml). Build context: the
# repository root:  docker build --network host -t facteur .
# Only classic-builder instructions (no BuildKit mounts), so Compose 1.29 and 2 build it alike.

# --- The dependency manifests alone: the `npm ci` layers below are reused until one changes.
FROM node:22-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json ! -name package-lock.json ! -path './packages/*/bin/*' -delete \
 && find . -depth -type d -empty -delete

# --- Build: every dependency (TypeScript included), then `tsc -b`; the dist/ directories are
# gathered in /out for the runtime stage (without tsc's build information, kept in each dist/).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY --from=manifests /src/ ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY packages/ packages/
COPY services/ services/
RUN npm run build \
 && for d in packages/* services/*; do \
      if [ -d "$d/dist" ]; then mkdir -p "/out/$d" && cp -r "$d/dist" "/out/$d/"; fi; \
    done \
 && rm -f /out/*/*/dist/tsconfig.tsbuildinfo

# --- Runtime: production dependencies and the built JavaScript, run by plain node as MAIL_UID.
FROM node:22-bookworm-slim
# The user the services run as; the directories the volumes are mounted on belong to it, and a
# new named volume copies that ownership on first use.
ARG MAIL_UID=5000
ARG MAIL_GID=5000
# tini (PID 1): forwards SIGTERM to node and reaps what it leaves behind.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid "$MAIL_GID" facteur \
 && useradd --uid "$MAIL_UID" --gid "$MAIL_GID" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin facteur \
 && install -d -o facteur -g facteur -m 0755 /var/mail \
 && install -d -o facteur -g facteur -m 0700 /var/spool/facteur \
 && install -d -o facteur -g facteur -m 0750 /etc/facteur
WORKDIR /app
COPY --from=manifests /src/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force && rm -rf /root/.npm
COPY --from=build /out/ ./
RUN chmod 755 packages/mailctl/bin/mailctl.js packages/health/bin/facteur-healthcheck.js \
 && ln -s /app/packages/mailctl/bin/mailctl.js /usr/local/bin/mailctl \
 && ln -s /app/packages/health/bin/facteur-healthcheck.js /usr/local/bin/facteur-healthcheck \
 && node -e "import('@facteur/config')" \
 && ! node -e "require.resolve('tsx')" 2>/dev/null

ENV NODE_ENV=production \
    MAIL_UID=$MAIL_UID \
    MAIL_GID=$MAIL_GID \
    FACTEUR_SERVICE=supervisor
USER facteur
# Which /healthz: the port of the service FACTEUR_SERVICE names (compose sets it per service).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["facteur-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "services/supervisor/dist/main.js"]
