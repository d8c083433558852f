# A minimal image of the static mcp-server binary, run as a non-root user.
#
#   make image                       (or: docker build --build-arg VERSION=$(git describe --always) -t cosell-mcp .)
#   docker run -i --rm cosell-mcp    MCP over stdio, the default: -i keeps stdin open for the client
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/keys.txt:/keys.txt:ro" cosell-mcp \
#     --http 0.0.0.0:8080 --api-keys-file /keys.txt     streamable HTTP at /mcp (auth beyond loopback)
#
# State (triggers, events) lives in /var/lib/cosell-mcp; mount a volume there to keep it.
# GO_IMAGE may name another Go 1.26 image with a shell, e.g. a mirror's copy.
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The final image's file system: the binary, CA certificates for the upstreams' TLS, a /tmp for
# workbooks being read and the state directory of the non-root user 65532.
RUN mkdir -p /out/etc/ssl/certs /out/tmp /out/var/lib/cosell-mcp \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mcp-server ./cmd/mcp-server \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && chmod 1777 /out/tmp \
 && chown 65532:65532 /out/var/lib/cosell-mcp && chmod 700 /out/var/lib/cosell-mcp

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
ENV COSELL_STATE_DIR=/var/lib/cosell-mcp
EXPOSE 8080
ENTRYPOINT ["/mcp-server"]
