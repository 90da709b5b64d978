//! mesh-proxy: the sidecar data plane.
//!
//! A transparent HTTP/1, HTTP/2, gRPC and TCP proxy configured with Linkerd's environment
//! variables. It runs standalone: no control plane is needed. `main.rs` stays thin;
//! everything lives in this library.
//!
//! # Running it
//!
//! - `mesh-proxy` runs the proxy from the environment.
//! - `mesh-proxy init …` installs the iptables rules (see [`init`]).
//! - `mesh-proxy await [--timeout D] [--shutdown] -- CMD ARGS…` runs `CMD` once the
//!   proxy's `/ready` answers 200 and exits with its status (see [`await_cmd`]).
//!
//! A malformed variable exits with 64 and a message naming it; a listener that cannot be
//! bound exits with 1; a graceful shutdown (SIGTERM, SIGINT, `POST /shutdown`) stops
//! accepting, lets in-flight requests finish within the grace period, and exits with 0 as
//! soon as the last connection is done. While draining, every HTTP/1 response says
//! `Connection: close` (decided as its head is sent) and HTTP/2 clients get GOAWAY, so a
//! keep-alive client sends its next request on a new connection instead of losing it; an
//! HTTP/1 connection with no request in flight closes at once.
//!
//! # Traffic
//!
//! - **Transparent mode.** Connections that iptables redirected (to 4140 outbound, 4143
//!   inbound) are forwarded to their `SO_ORIGINAL_DST` (IPv4 and IPv6).
//! - **HTTP proxy mode.** A connection made straight to the outbound port is an explicit
//!   HTTP proxy client: absolute-form requests, `CONNECT host:port`, and origin-form
//!   requests routed by `Host`, so `http_proxy=127.0.0.1:4140 curl http://svc:8080/`
//!   works without iptables.
//! - **Inbound without iptables.** With `MESH_PROXY_INBOUND_FORWARD_ADDR`, a connection
//!   made straight to the inbound port is forwarded there (a plain reverse proxy).
//! - **Protocol detection** on every connection: HTTP/1, HTTP/2 prior knowledge (gRPC),
//!   TLS (passed through untouched, unless it is mesh TLS for this proxy), anything else
//!   opaque. Ports in the opaque lists skip it. A client silent for the server-speaks-first
//!   window (50 ms) makes the proxy connect upstream; a server that speaks first is
//!   forwarded at once as opaque TCP.
//!
//! # Mesh TLS
//!
//! With an identity (see [`identity`]: from the identity service or from certificate
//! files, see the Environment tables), proxies talk to each other, and to the control
//! plane, over mutually authenticated TLS, as Linkerd's do (see [`tls`]):
//!
//! - **Outbound**, to an endpoint discovery gives an identity (the control plane's
//!   `tls_identity`, a namer line's `tls=`): TLS 1.3 (rustls with ring), SNI the
//!   endpoint's identity, the proxy's certificate as client certificate, the server's chain
//!   checked against the trust anchors and that name. HTTP and opaque TCP alike; the
//!   connect timeout bounds the TCP connect and the handshake together. A failed handshake
//!   answers 502 (`l5d-proxy-error: mesh TLS to ADDR expecting identity NAME: …`) and is
//!   never moved to another endpoint or retried in plaintext. Before the proxy has its
//!   first certificate it connects without a client certificate, as linkerd2-proxy does.
//! - **To the control plane**: the Destination and policy clients connect the same way (the
//!   same [`tls::MeshTls`] client configuration, no ALPN) when the proxy has an identity and
//!   `LINKERD2_PROXY_DESTINATION_SVC_NAME` / `LINKERD2_PROXY_POLICY_SVC_NAME` names the
//!   service, with HTTP/2 inside; each connection waits for the first certificate and
//!   presents the current one. A failed handshake is logged (`mesh TLS to the destination
//!   service at ADDR failed (expecting identity NAME): …`) and retried after the backoff,
//!   never in plaintext. A loopback address (`localhost.`, a loopback IP) stays plaintext,
//!   as in Linkerd (see [`control`]).
//! - **Inbound**: a connection whose first bytes are a TLS ClientHello whose SNI is this
//!   proxy's identity is terminated, and protocol detection runs on the decrypted stream. A
//!   client certificate is asked for, verified against the trust anchors, and optional; its
//!   DNS name is the client's identity. A ClientHello for another name (or none) is
//!   forwarded untouched as before. The proxy waits at most the server-speaks-first window
//!   (50 ms, or that default when the window is off) for a client's first byte, reads at
//!   most 16 KiB of ClientHello, and finishes the handshake within the detect timeout
//!   (10 s); a handshake that fails closes the connection. Plaintext clients reach the
//!   same protocol detection; what they may do is the inbound policy's to say (see
//!   "Inbound authorization" below).
//! - The admin server's `/ready` answers 503 until the proxy holds its first certificate.
//! - Certificates are replaced without a restart: connections opened after a change use
//!   the new one. The identity itself (its name) is fixed for the life of the process.
//! - No session resumption (no tickets, no cache), on either side.
//!
//! Linkerd's opaque transport header (see [`tls::transport_header`]):
//!
//! - **Inbound**, the server offers the ALPN protocol `transport.l5d.io/v1`, as
//!   linkerd2-proxy's does; a client that offers no ALPN protocol negotiates none and is
//!   served as above (one that offers only other protocols fails the handshake, rustls's
//!   rule for a server with ALPN, as for linkerd2-proxy). A client that negotiated it must start the decrypted stream with the
//!   header (preface `transport.l5d.io/v1\r\n\r\n`, a big-endian 4-byte length of at
//!   most 4 KiB, the protobuf `transport.l5d.io.Header`) within the detect timeout, which
//!   also bounds the handshake. The rest of the stream is forwarded as opaque TCP, without
//!   protocol detection, to the header's port on the pod (the original destination's
//!   address, else `MESH_PROXY_INBOUND_FORWARD_ADDR`'s, else the address the client
//!   dialled), never to the port dialled (4143): the inbound policy of the header's port
//!   decides, and the `tcp_*` metrics are labelled with that port. As linkerd2-proxy's
//!   inbound, which is not a gateway, refuses them, a client without a certificate, a
//!   header with a `name` (a gateway target) and one with a session protocol are refused.
//!   Those, and a malformed, oversized or late header, close the connection (logged at
//!   debug) and count `mesh_proxy_inbound_transport_header_refused_total`.
//! - **Outbound**, as linkerd2-proxy: opaque TCP (and an HTTP proxy client's `CONNECT`
//!   tunnel) to an endpoint that discovery gives both an identity and an opaque-transport
//!   hint (`ProtocolHint.opaque_transport.inbound_port`) connects to that inbound port on
//!   the endpoint's IP, offers `transport.l5d.io/v1`, and sends the header with the
//!   endpoint's own port (no name, no session protocol) before the client's bytes; the
//!   connect timeout bounds the handshake and the header's write. A server that does not
//!   negotiate the protocol fails the connection (it is not sent without the header). HTTP,
//!   endpoints without an identity, and a hint of port 0 or above 65535 use the endpoint's
//!   own port, without ALPN.
//!
//! # Discovery and balancing
//!
//! Outbound, every request (and every opaque connection) is balanced on its own over its
//! logical target's endpoints (see [`balance`], [`outbound`]):
//!
//! - **The logical target** is the original destination; with a control plane, a
//!   request's `Host` when the control plane knows that name (falling back to the
//!   original destination for names it never answered); in HTTP proxy mode, the name the
//!   request gives.
//! - **Discovery** streams the target's endpoints and profile: Linkerd's `Destination`
//!   service ([`outbound::discover::destination`]), the system resolver for names in HTTP
//!   proxy mode, or nothing (the original destination is the one endpoint).
//! - **Balancing**: power of two choices over peak-EWMA latency × requests in flight
//!   (Linkerd's default; decay 10s, 30ms for an endpoint not measured yet), over requests
//!   in flight, or round robin; weighted backends for traffic splits. Unlike Linkerd, an
//!   endpoint that joins a measured set starts at the set's mean estimate, not 30ms, so a
//!   new pod gets its share at once even from clients with few requests in flight. Endpoints come and
//!   go without losing requests in flight.
//! - **Failure accrual**: 5 consecutive failures (connection errors, 5xx) eject a
//!   discovered endpoint for 1s, doubling up to 1m while its probe requests fail. With
//!   no endpoint available the proxy answers 503 at once (`l5d-proxy-error: service
//!   unavailable: …`, gRPC status 14), never queueing.
//! - **Retries and timeouts** from the target's ServiceProfile: a request on an
//!   `isRetryable` route whose response the route classifies as a failure is sent again
//!   to a new pick, at most 3 times, within the retry budget (by default 20 % extra load
//!   plus 10 retries a second over 10 s, as Linkerd); a route's `timeout` bounds the
//!   request, retries included (504). An HTTP/1 request body of at most 64 KiB (with
//!   its `Content-Length`) is read whole first so it can be sent again, as Linkerd does;
//!   larger, chunked and HTTP/2 request bodies are not retried (not yet).
//!   Route `pathRegex`es are Go's syntax as in Linkerd, matched by `regex-lite`: the
//!   same syntax without Unicode classes (`\pL`, `\p{Greek}`); a route that uses one is
//!   left out with a warning. The smaller engine keeps about 0.4 MB of machine code out
//!   of every sidecar.
//! - **Per-endpoint clients**: HTTP/1 connections are pooled per endpoint and HTTP/2
//!   connections shared per endpoint, so keep-alive and multiplexed clients are
//!   balanced request by request.
//!
//! # Environment
//!
//! Linkerd's variables (defaults as in linkerd2-proxy):
//!
//! | variable | default |
//! |---|---|
//! | `LINKERD2_PROXY_INBOUND_LISTEN_ADDR` | `0.0.0.0:4143` |
//! | `LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR` (`…_ADDRS`: up to two) | `127.0.0.1:4140` |
//! | `LINKERD2_PROXY_ADMIN_LISTEN_ADDR` | `127.0.0.1:4191` |
//! | `LINKERD2_PROXY_LOG` | `warn,mesh_proxy=info`; a `linkerd=` directive also applies to mesh-proxy; at most 4 KiB and 64 directives; `[{field=value}]` values match literally, not as regexes (see [`log`]). Requests failed by the upstream (connect errors, resets, response timeouts) and unreachable opaque upstreams are logged at `warn`, at most once a second each, with `skipped=` counting the ones left out (see [`throttle`]) |
//! | `LINKERD2_PROXY_LOG_FORMAT` | `plain` (or `json`), to stderr |
//! | `LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION` | `25,587,3306,4444,5432,6379,9300,11211` |
//! | `LINKERD2_PROXY_{INBOUND,OUTBOUND}_DETECT_TIMEOUT` | `10s`; then the connection is forwarded as opaque TCP, unless its bytes begin an HTTP/1 request: that stays HTTP, under the header read timeout (Linkerd forwards it as opaque TCP, escaping that timeout) |
//! | `LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT` | `300ms` |
//! | `LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT` | `1s` |
//! | `LINKERD2_PROXY_{INBOUND,OUTBOUND}_{ACCEPT,CONNECT}_KEEPALIVE` | unset (no SO_KEEPALIVE) |
//! | `LINKERD2_PROXY_{INBOUND,OUTBOUND}_{ACCEPT,CONNECT}_USER_TIMEOUT` | unset |
//! | `LINKERD2_PROXY_{INBOUND,OUTBOUND}_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT` | `3s` |
//! | `LINKERD2_PROXY_MAX_IDLE_CONNS_PER_ENDPOINT`, `…_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT` | `10000` |
//! | `LINKERD2_PROXY_{INBOUND,OUTBOUND}_SERVER_HTTP2_KEEP_ALIVE_{INTERVAL,TIMEOUT}` | unset |
//! | `LINKERD2_PROXY_HTTP2_INITIAL_{STREAM,CONNECTION}_WINDOW_SIZE` | `65535`, `1048576` |
//! | `LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD` | `2m` |
//! | `LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED` | `true` when unset; `false` disables `/shutdown` |
//! | `LINKERD2_PROXY_METRICS_RETAIN_IDLE` | `10m`: a metric series nothing uses and that has not changed for this long is dropped |
//! | `LINKERD2_PROXY_CORES` (`…_CORES_MIN` is a floor) | `1`: a single-threaded runtime |
//! | `LINKERD2_PROXY_DESTINATION_SVC_ADDR` | unset (no control plane); `host:port` of Linkerd's `Destination` service, a name looked up again on each connection (the injector writes `linkerd-dst-headless.linkerd.svc.cluster.local.:8086`). HTTP/2 over mesh TLS when the proxy has an identity and `LINKERD2_PROXY_DESTINATION_SVC_NAME` is set, unless the address is loopback (a loopback IP, or `localhost.` with its dot: a bare `localhost` is not, as in Linkerd), else plaintext (said once at info level; at warn level for an identity without the name, where Linkerd refuses to start); messages up to 4 MiB; connect timeout 1s (with mesh TLS: 1s per address, then 5s for the handshake); reconnects after 100ms doubling to 10s, jittered, a failed handshake included; the last answer stays while it is unreachable; a target not answered within 3s (or at once, if the connection fails first) goes to its original destination; at most 10000 targets watched and 10000 endpoints per set (see [`outbound::discover::destination`]) |
//! | `LINKERD2_PROXY_DESTINATION_CONTEXT` | empty; sent with every lookup as `context_token` |
//! | `LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES` | `svc.cluster.local.`: names under these comma-separated suffixes are looked up (`.` is every name); others go to the next source |
//! | `LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS` | unset: every address is looked up; else only addresses in these comma-separated `IP/PREFIX` networks |
//! | `LINKERD2_PROXY_DESTINATION_SVC_NAME` | unset; the identity the `Destination` service must present (the SNI, and the name its certificate must carry under the trust anchors); a DNS name without a trailing dot, else exit 64. Ignored for a loopback address and without an identity |
//! | `LINKERD2_PROXY_IDENTITY_SVC_ADDR` | unset (no identity: plaintext, `tls="no_identity"`); `host:port` of Linkerd's identity service (the injector writes `linkerd-identity-headless.linkerd.svc.cluster.local.:8080`), looked up again for each call. With it the proxy asks for a certificate at start-up and, as Linkerd's proxy does, serves no traffic (connections wait in the listen backlog) and answers `/ready` with 503 until it has one; the four variables below are then required. Ignored when `MESH_PROXY_IDENTITY_CERT_FILE` gives the certificate (see [`identity::certify`]) |
//! | `LINKERD2_PROXY_IDENTITY_SVC_NAME` | the identity the service's certificate must name, chained to the trust anchors |
//! | `LINKERD2_PROXY_IDENTITY_LOCAL_NAME` | the proxy's identity: the one name of its CSR and certificate; with certificate files, a DNS name the certificate must carry (unset: its first DNS name) |
//! | `LINKERD2_PROXY_IDENTITY_TOKEN_FILE` | the service-account token sent with each call, read again each time (the kubelet rotates it); at most 16 KiB, trailing whitespace removed; must exist and not be empty at start-up |
//! | `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS` | PEM CA certificates every peer's certificate (and the proxy's own) must chain to; required with an identity source (files or the identity service), a malformed one exits 64 |
//! | `LINKERD2_PROXY_IDENTITY_MIN_REFRESH`, `…_MAX_REFRESH` | `10s`, `24h`: a certificate is renewed after 70 % of the time it had left when it came, within these bounds. A failed call (each has 10s) keeps the current certificate, is logged as an error and is tried again after 1s, doubling to 60s, jittered (Linkerd waits `MIN_REFRESH` after every failure) |
//! | `LINKERD2_PROXY_IDENTITY_DIR` | accepted and ignored: the key is made in memory and never written anywhere (Linkerd's proxy container writes its key and CSR there, to an in-memory volume, before the proxy starts) |
//! | `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY` | `all-unauthenticated`; or `all-authenticated`, `cluster-unauthenticated`, `cluster-authenticated`, `deny`, `audit` (every client; allowed requests and connections logged at `info` at most once a second, with `skipped=`, the rest at `debug`): who may use a port no control-plane policy covers (see [Inbound authorization](#inbound-authorization)) |
//! | `LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS` | `10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8` (Linkerd's `clusterNetworks`, which the injector writes here): the networks of the `cluster-*` policies. linkerd2-proxy has no networks when it is unset, so its `cluster-*` policies then refuse everyone; mesh-proxy takes Linkerd's install default instead, so a standalone proxy's `cluster-*` means what it says |
//! | `LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY` | unset; ports and ranges whose default policy admits only clients with a mesh identity: `all-unauthenticated` becomes `all-authenticated`, `cluster-unauthenticated` becomes `cluster-authenticated`, `deny` and `audit` stay (so under `audit` a plaintext client is let in and logged), as Linkerd's policy controller answers for these ports. Linkerd's variable from its `config.linkerd.io/proxy-require-identity-inbound-ports` annotation (`mesh inject` writes it). A deliberate difference: recent linkerd2-proxy ignores it and leaves such a port the plain default until the policy controller answers; mesh-proxy applies the controller's rule from the start, so the port is as strict before the answer as after, and without a control plane |
//! | `LINKERD2_PROXY_INBOUND_PORTS` | unset; with a policy service, these ports' policies are watched from start-up instead of on their first connection |
//! | `LINKERD2_PROXY_POLICY_SVC_ADDR` | unset (no policy service); `host:port` of Linkerd's `InboundServerPolicies` service (the injector writes `linkerd-policy.linkerd.svc.cluster.local.:8090`). HTTP/2, over mesh TLS as for the `Destination` service, with `LINKERD2_PROXY_POLICY_SVC_NAME`; messages up to 4 MiB; connect timeout 1s; reconnects after 100ms doubling to 10s, jittered |
//! | `LINKERD2_PROXY_POLICY_SVC_NAME` | unset; the identity the policy service must present, as `LINKERD2_PROXY_DESTINATION_SVC_NAME` for the `Destination` service (the injector writes the destination controller's identity for both) |
//! | `LINKERD2_PROXY_POLICY_WORKLOAD` | required with `LINKERD2_PROXY_POLICY_SVC_ADDR`; sent as it is as the `workload` of every `WatchPort` (the injector writes `{"ns":…, "pod":…}`) |
//!
//! Durations are Linkerd's: a whole number and `ms`, `s`, `m`, `h` or `d`. Any other
//! `LINKERD2_PROXY_*` variable (tracing, …) is accepted,
//! logged once at debug level, and ignored until the feature exists.
//!
//! mesh-proxy's own knobs:
//!
//! | variable | default | |
//! |---|---|---|
//! | `MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW` | `50ms` | silence before connecting upstream to see if the server speaks first; `0` turns it off |
//! | `MESH_PROXY_INBOUND_FORWARD_ADDR` | unset | where inbound connections that were not redirected go |
//! | `MESH_PROXY_OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION` | Linkerd's opaque ports | outbound opaque ports (Linkerd learns these from discovery) |
//! | `MESH_PROXY_MAX_CONNECTIONS` | `10000` | per direction; more are accepted and closed at once |
//! | `MESH_PROXY_MAX_HEADER_BYTES` | `64Ki` | largest request head (431 beyond) and HTTP/2 header list |
//! | `MESH_PROXY_HEADER_READ_TIMEOUT` | `30s` | time from connecting to sending the first request head, protocol detection included (408 after it); an HTTP/1 connection with no new request and none in flight for one to two of these is closed (keep-alive idleness, slow heads) |
//! | `MESH_PROXY_REQUEST_BODY_TIMEOUT` | `60s` | time a client has to send each further KiB of a request body (or its end), waiting time only; after it, 408 and close on HTTP/1, 408 on the stream on HTTP/2 (the connection stays; the upstream stream is cancelled). On HTTP/2 it applies until the upstream's response head: a bidirectional stream may pause once the server has answered. `0` turns it off. A byte now and then does not restart it, unlike nginx's `client_body_timeout`: such a client would hold its connection slot forever |
//! | `MESH_PROXY_TCP_IDLE_TIMEOUT` | `1h` | an opaque connection idle this long (up to twice this) is closed |
//! | `MESH_PROXY_RESPONSE_TIMEOUT` | unset | time for an upstream to send response headers (504) |
//! | `MESH_PROXY_HTTP2_MAX_CONCURRENT_STREAMS` | `1000` | per served HTTP/2 connection |
//! | `MESH_PROXY_HTTP2_MAX_PENDING_ACCEPT_RESETS` | `20` | rapid-reset cap: client resets before GOAWAY |
//! | `MESH_PROXY_HTTP2_MAX_LOCAL_ERROR_RESETS` | `1024` | proxy-side resets before GOAWAY |
//! | `MESH_PROXY_METRICS_MAX_SERIES` | `1000` | label sets per metric family (HTTP, TCP); new ones past it are counted in an overflow series (see Metrics) |
//! | `MESH_PROXY_TAP_ENABLED` | `false` | serve `GET /tap` on the admin port: live request metadata for `mesh tap` and `mesh top` (see [`admin::tap`]) |
//! | `MESH_PROXY_BALANCER` | `peak-ewma` | how outbound requests choose an endpoint: `peak-ewma`, `least-loaded` (P2C over requests in flight) or `round-robin` |
//! | `MESH_PROXY_FAILURE_ACCRUAL_CONSECUTIVE` | `5` | consecutive failures (connection errors, 5xx) that eject a discovered endpoint; `0` turns ejection off |
//! | `MESH_PROXY_FAILURE_ACCRUAL_MIN_PENALTY`, `…_MAX_PENALTY` | `1s`, `1m` | how long an ejected endpoint rests; the penalty doubles each time its probe fails |
//! | `MESH_PROXY_DISCOVERY_WAIT` | `3s` | how long a request waits for discovery's first answer before going to its original destination |
//! | `MESH_PROXY_FS_NAMER_DIR` | unset | turns on discovery through a Linkerd 1 dtab over a file namer: `/#/io.l5d.fs/<name>` is the file `<name>` here, one `IP:PORT` (or `IP PORT`) per line, optionally ` tls=<identity>`; files are polled every 250 ms (at most 1 MiB and 10000 lines; bad lines skipped with a warning naming `file:line`). A request for host `web` is the name `/svc/web`, port left out (see [`outbound::discover::namer`]) |
//! | `MESH_PROXY_DTAB` | `/svc => /#/io.l5d.fs` | the dtab, in Linkerd 1's syntax (at most 64 KiB); needs `MESH_PROXY_FS_NAMER_DIR`; a syntax error exits 64 with its line and column. The admin server's `PUT /dtab` replaces it at run time, `GET /dtab` prints it (loopback clients only) |
//! | `MESH_PROXY_DTAB_FILE` | unset | a file holding the dtab, read once at start-up; setting both this and `MESH_PROXY_DTAB` is an error |
//! | `MESH_PROXY_IDENTITY_CERT_FILE`, `MESH_PROXY_IDENTITY_KEY_FILE` | unset | the proxy's identity from files, for running without a control plane: a PEM certificate chain (leaf first) and its key (PKCS#8 `PRIVATE KEY`, or SEC1 `EC PRIVATE KEY`), at most 1 MiB each. Both are needed, with `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`. Checked at start-up (key matches, chain leads to an anchor, not expired, names the identity; else exit 64), then read every 500 ms: new contents that pass the checks are used from the next connection on, others are ignored with a warning (see [`identity::files`]) |
//!
//! # Errors
//!
//! The proxy answers instead of hanging, with an `l5d-proxy-error` header saying why:
//! 502 when the upstream refuses or fails, 503 when the target has no available endpoint,
//! 504 on a connect or response timeout, 400 for a
//! request it cannot route or parse (a malformed chunked body included), 431 for oversized
//! headers, 408 for a slow request head or body, 403 (`unauthorized request on route`) for
//! an inbound request its port's policy does not authorize, 404 (`no route found for
//! request`) for one that matches none of its policy's routes. gRPC requests get a gRPC
//! status instead (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED, 7 PERMISSION_DENIED, 5 NOT_FOUND).
//! The first request on a connection is checked before the HTTP server sees it (including
//! `Content-Length` together with `Transfer-Encoding`, which is rejected); later requests
//! on a keep-alive connection are checked by hyper, whose 400 carries no header.
//!
//! # Metrics
//!
//! `GET /metrics` on the admin port, in Prometheus text, with Linkerd's names and labels:
//!
//! - `request_total`, `response_total` (adds `status_code`, `classification`,
//!   `grpc_status`, `error`), `response_latency_ms` (adds `status_code`; buckets 1, 2, 3,
//!   4, 5, 10, 20, …, 50000 ms as Linkerd's): labels `direction`, `authority`,
//!   `target_addr`, `target_ip`, `target_port`, `tls`, `no_tls_reason`, and outbound the
//!   endpoint's `dst_*` labels from discovery (`dst_namespace`, `dst_service`, `dst_pod`,
//!   … as the control plane gives them). `target_addr` is the endpoint the request went to.
//! - `route_retry_total`, `route_retry_budget_exhausted_total`: labels `direction`,
//!   `dst` (the authority), `rt_route` (the profile route): requests sent again, and
//!   retryable failures not sent again because the budget was spent.
//! - `tcp_open_total`, `tcp_open_connections`, `tcp_read_bytes_total`,
//!   `tcp_write_bytes_total`, `tcp_close_total` (adds `errno`): labels `direction`,
//!   `peer` (`src` accepted, `dst` opened), `target_addr`, `target_ip`, `target_port`,
//!   `tls`, `no_tls_reason`.
//! - `inbound_http_authz_allow_total`, `inbound_http_authz_deny_total`,
//!   `inbound_http_route_not_found_total`, `inbound_tcp_authz_allow_total`,
//!   `inbound_tcp_authz_deny_total`, `inbound_tcp_authz_terminate_total`: inbound requests
//!   and connections each policy allowed, refused, found no route for, or closed when a new
//!   policy revoked them. Labels in Linkerd's order: `target_addr` (and `target_ip`,
//!   `target_port`), `srv_group`, `srv_kind`, `srv_name`, `srv_port`, for HTTP
//!   `route_group`, `route_kind`, `route_name`, when allowed `authz_group`, `authz_kind`,
//!   `authz_name`, then `tls` (`true` with `client_id`, or `no_identity` with
//!   `no_tls_reason`). A default policy is `srv_kind="default"` named as the policy, its
//!   one route `route_kind="default",route_name="default"`. A family appears once it has
//!   counted something, as in Linkerd. A request refused by policy is also in
//!   `request_total` and `response_total`, with `error="forbidden"` and
//!   `classification="success"`: the client lacked the right, the backend failed nothing.
//! - `mesh_proxy_metrics_series` (gauge) and `mesh_proxy_metrics_series_overflow_total`
//!   (counter), label `family` (`http` for the `request_total`, `response_*` families,
//!   `tcp` for the `tcp_*` ones): label sets held, and new label sets folded into an
//!   overflow series.
//! - `mesh_proxy_inbound_transport_header_refused_total` (counter, no labels): inbound
//!   mesh TLS connections closed for their transport header (see "Mesh TLS").
//! - `identity_cert_expiration_timestamp_seconds` (gauge, Unix seconds; 0 before the first
//!   certificate) and `identity_cert_refresh_count` (counter, the first certificate
//!   included): only when the proxy has an identity source.
//! - `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//!   `process_start_time_seconds`, and `proxy_build_info`.
//! - `identity_cert_expiration_timestamp_seconds` (gauge, Linkerd's): when the proxy's
//!   current certificate expires, in seconds since the Unix epoch; present once it has one.
//!
//! `tls` is Linkerd's label. Mesh TLS: `tls="true"` with `client_id` (inbound, the
//! client's identity, empty when it sent no certificate) or `server_id` (outbound, the
//! identity the endpoint proved). Plaintext: `tls="no_identity"` with `no_tls_reason`
//! `no_tls_from_remote` (inbound clients that did not start mesh TLS for this proxy),
//! `loopback` (the application's connections to its proxy and the inbound proxy's to the
//! application) or `not_provided_by_service_discovery` (outbound endpoints without an
//! identity, and every endpoint while the proxy has no identity of its own; Linkerd,
//! whose identity can no longer be turned off, would write `tls="disabled"` there). HTTP
//! metrics take the client connection's label inbound and the endpoint connection's
//! outbound. Tap's `tls` field is `true` or `no_identity`.
//! A response is a `failure` if its status is 5xx, its `grpc-status` is not 0, or its
//! stream failed, as in Linkerd; 4xx are successes. The `error` label says what the proxy
//! saw (`connect`, `connect_timeout`, `response_timeout`, `upstream`, `unavailable`,
//! `stream`, `cancel`: failures), or that it answered the client's own mistake (`bad_request` for 400 and 431,
//! `request_timeout` for 408): those answers are successes, so a client sending malformed
//! or stalled requests does not lower the backend's success rate.
//!
//! ## Bounded cardinality
//!
//! `authority` is the client's `Host` and `target_addr` the address it dialled, so peers
//! choose label values. Each family keeps at most `MESH_PROXY_METRICS_MAX_SERIES` label
//! sets (default 1000: about 7 MB and 10 MB of text for HTTP at the cap). Past that, a new
//! label set is counted in its family's overflow series instead: `authority`,
//! `target_addr`, `target_ip` and `target_port` are empty, the other labels are kept, and
//! `overflow="true"` is added; each fold adds one to
//! `mesh_proxy_metrics_series_overflow_total`. Label sets already held keep their series.
//! A series that no connection or request holds and that has not changed for
//! `LINKERD2_PROXY_METRICS_RETAIN_IDLE` (Linkerd's variable and default, 10 minutes) is
//! dropped, on a scrape or within 10 s; its slot is free again and its counters restart
//! if it comes back. Within one series, past 64 kinds of response (status, `grpc-status`,
//! error, which upstreams choose) the rest share one `response_total` line per
//! classification with an empty `status_code`. Linkerd has no cap; mesh-proxy has one
//! because its HTTP series carry a fine histogram and a peer can otherwise grow them
//! without end. Scrapes copy the series list under a read lock and format without it.
//!
//! ## The fine latency histogram
//!
//! Linkerd's buckets make p99 jump between 30, 40 and 50 ms. mesh-proxy also exports
//! **`response_latency_fine_us`**, a histogram of the same latency (request headers
//! received to response stream complete) in **microseconds**, with labels `direction`,
//! `authority`, `target_addr`, `target_ip`, `target_port`, `tls`, `no_tls_reason` (no
//! `status_code`).
//!
//! Bucket scheme (inclusive upper bounds, `le`, in µs):
//!
//! - `1, 2, 3, …, 64`: one microsecond wide;
//! - then each power of two from 64 to 2^27 (about 134 s) is split into 32 equal
//!   buckets: `le = 2^k + (j + 1) · 2^(k-5)` for `k = 6..=26`, `j = 0..=31` (66, 68, …,
//!   128, 132, …, 256, 264, …);
//! - then `+Inf`.
//!
//! No bucket above 32 µs is wider than 3.125 % of its lower bound, so a quantile
//! interpolated inside a bucket, as Prometheus' `histogram_quantile` does, is within
//! 3.2 % of the true sample quantile.
//!
//! Only non-empty buckets are written, each preceded by the bound just below it (with its
//! cumulative count), plus `+Inf`, `_sum` (µs) and `_count`. The scheme is fixed, so a
//! reader can rebuild the full cumulative series: a bound that is absent has the
//! cumulative count of the nearest present bound below it (0 if none).
//!
//! # Inbound authorization
//!
//! Every inbound port has a policy, as in Linkerd (see [`inbound::policy`]): a list of
//! authorizations, each a set of client networks and what the client must prove (nothing;
//! mesh TLS; a mesh identity among some names or under some suffixes). The port's policy is
//! the default of `LINKERD2_PROXY_INBOUND_DEFAULT_POLICY` (its require-identity form on the
//! ports of `LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY`), until the policy service, if
//! there is one, answers for that port; from then on each answer replaces it.
//!
//! - **HTTP** is checked per request, against the policy as it is when the request
//!   arrives, so a change applies to the next request on a connection already open. A
//!   refused request gets 403 (gRPC: status 7) and is not forwarded; the connection
//!   stays open.
//! - **Opaque TCP** (opaque ports, a policy that says opaque or TLS, anything not HTTP) is
//!   checked once per connection: a refused one is closed before anything is forwarded, and
//!   a forwarded one that a policy change no longer authorizes is closed then. A silent
//!   client the policy would refuse here gets no server-speaks-first connection to the
//!   application.
//! - **Routes.** A policy from the control plane may split HTTP into routes (Gateway API
//!   `HTTPRoute`, `GRPCRoute`, and the probe routes Linkerd's policy controller makes for
//!   a pod's kubelet probes), each with its own authorizations plus the server's; a request
//!   takes the most specific route (host, path, method, headers, query, as the Gateway API
//!   orders them), and one that matches none gets 404. Route filters (redirects, header
//!   changes, injected failures) and HTTP rate limits are not applied; `server_ips` is not
//!   checked.
//! - **The policy service** (`LINKERD2_PROXY_POLICY_SVC_ADDR`): one `WatchPort` stream per
//!   port, opened on the port's first connection (or at start-up for
//!   `LINKERD2_PROXY_INBOUND_PORTS`), at most 128 at once; a port nobody has connected to
//!   for 90s makes room for another. Until the first answer, and if the service is
//!   unreachable, the default applies, as in Linkerd; once answered, the last answer stays
//!   while the service is away. An answer the proxy cannot read is logged and ignored. As
//!   in Linkerd, every policy from the service also lets unauthenticated clients from
//!   `127.0.0.1` and `::1` in (`kubectl port-forward` connects from there); the defaults do
//!   not. A policy change reaches new requests within milliseconds of its arrival.
//! - **Logs.** Refused requests and connections are logged at `info` at most once a second
//!   (with `skipped=` counting the ones left out), the rest at `debug`; the counters count
//!   every one.
//! - **Who the client is** comes from inbound mesh TLS (see [`tls`]): a client whose
//!   ClientHello names this proxy's identity and that presents a certificate chaining to the
//!   trust anchors is authenticated as that certificate's DNS name; TLS without a client
//!   certificate is unauthenticated TLS; anything else (plaintext, or TLS for another name,
//!   passed through) is a plaintext client, which the `*-authenticated` policies refuse.
//! - **The admin server is outside policy.** Its `/ready`, `/live` and `/metrics` answer
//!   every client under any policy (`/shutdown`, `/proxy-log-level` and `/dtab` only the pod
//!   itself). linkerd2-proxy applies policy to its admin port too, where its policy
//!   controller's probe routes let kubelet in.
//! - **Kubelet probes of the application's ports** are let in only by a policy that
//!   authorizes the node: the control plane's probe routes do (for every client, on the
//!   probes' paths); the defaults know no probe paths, so under `deny`, `all-authenticated`
//!   or `cluster-*` networks without the node, an HTTP probe of an application port is
//!   refused until the control plane answers, as in linkerd2-proxy.
//!
//! # Invariants
//!
//! - The proxy depends on no other mesh crate and never talks to Kubernetes.
//! - One TLS provider, ring, passed explicitly to every rustls builder; TLS 1.3 only.
//! - Only `io::orig_dst` calls `getsockopt`, through nix's safe wrapper: no `unsafe`.
//! - The data path never blocks on metrics: label sets are resolved per connection and
//!   counters are atomics.
//! - The admin server runs on a thread and runtime of its own, so no admin request can
//!   delay proxied traffic; the log level, `/shutdown` and `/dtab` answer loopback clients
//!   only.
//! - The namer reads its files on a thread of its own, never on the proxy's runtime; dtab
//!   evaluation runs on an explicit stack with bounded depth, nodes and path length.

pub mod admin;
pub mod app;
pub mod await_cmd;
pub mod backoff;
pub mod balance;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod connect;
pub mod control;
pub mod detect;
pub mod drain;
pub mod dtab;
#[cfg(test)]
mod fuzz_runner;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod init;
pub mod io;
pub mod log;
pub mod metrics;
pub mod outbound;
pub mod server;
pub mod stack;
pub mod target;
pub mod tcp;
pub mod throttle;
pub mod tls;
