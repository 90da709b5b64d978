use super::openapi::{self, path_to_regex};
use super::{proto, quote_meta};

#[test]
fn quote_meta_escapes_what_go_escapes() {
    assert_eq!(quote_meta("/a.b/c+d"), r"/a\.b/c\+d");
    assert_eq!(
        quote_meta(r"\.+*?()|[]{}^$"),
        r"\\\.\+\*\?\(\)\|\[\]\{\}\^\$"
    );
    assert_eq!(quote_meta("/plain-path_1~"), "/plain-path_1~");
}

#[test]
fn path_params_match_one_segment() {
    assert_eq!(path_to_regex("/books/{id}"), "/books/[^/]*");
    assert_eq!(
        path_to_regex("/a.b/{x.y}/c/{z}.json"),
        r"/a\.b/[^/]*/c/[^/]*\.json"
    );
    // An unclosed brace is literal.
    assert_eq!(path_to_regex("/a/{b"), r"/a/\{b");
}

#[test]
fn swagger_routes_follow_linkerd() {
    let spec = r#"{"swagger": "2.0", "basePath": "/api/", "paths": {
        "/books/{id}": {
            "parameters": [],
            "put": {"responses": {"200": {}, "500": {}}, "x-linkerd-timeout": "5s"},
            "get": {"responses": {"default": {}, "404": {}}, "x-linkerd-retryable": true}
        },
        "/authors": {"post": {}}
    }}"#;
    let routes = openapi::routes(spec).unwrap();
    let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "POST /api/authors",
            "GET /api/books/{id}",
            "PUT /api/books/{id}"
        ]
    );
    assert_eq!(routes[1].path_regex, "/api/books/[^/]*");
    assert_eq!(routes[1].response_classes, [(404, 404)]);
    assert!(routes[1].retryable);
    assert_eq!(routes[2].timeout.as_deref(), Some("5s"));
    assert_eq!(routes[2].response_classes, [(200, 200), (500, 500)]);
}

#[test]
fn openapi3_reads_the_server_path_and_ranges() {
    let spec = "openapi: 3.0.3\nservers:\n- url: https://api.example.com/v2\npaths:\n  /x:\n    trace:\n      responses:\n        5XX: {}\n";
    let routes = openapi::routes(spec).unwrap();
    assert_eq!(routes[0].name, "TRACE /v2/x");
    assert_eq!(routes[0].response_classes, [(500, 599)]);
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let err = |text: &str| openapi::routes(text).unwrap_err().to_string();
    assert!(err("paths: {}\n").contains("no swagger or openapi field"));
    assert!(err("swagger: '1.2'\n").contains("swagger: \"1.2\""));
    assert!(err("openapi: 3.0.0\npaths: {}\n").contains("no routes found"));
    assert!(err("openapi: 3.0.0\npaths:\n  /a: [1]\n").contains("paths./a: expected a mapping"));
    assert!(
        err("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      x-linkerd-timeout: soon\n")
            .contains("paths./a.get.x-linkerd-timeout: invalid duration")
    );
    assert!(err("").contains("an empty file"));
    assert!(err("a: 1\n---\nb: 2\n").contains("several documents"));
    assert!(err("{\"openapi\": ").contains("1:"));
}

#[test]
fn deep_specs_are_refused_without_recursing() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(openapi::routes(&deep).is_err());
}

const PROTO: &str = r#"
syntax = "proto3";
/* A block comment with service Fake { rpc Nope(A) returns (B); } inside */
package emojivoto.v1; // trailing comment

import "google/api/annotations.proto";
option go_package = "example.com/{x}";

message VoteRequest { message Inner { string service = 1; } }

service VotingService {
  option (my.service_option) = { deep: { deeper: "}" } };
  rpc VotePoop (VoteRequest) returns (VoteResponse);
  rpc Watch(stream VoteRequest) returns (stream VoteResponse) {}
  rpc Get(VoteRequest) returns (VoteResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
    option (google.api.http) = { get: "/v1/{name=votes/*}" };
  }
}

enum Kind { A = 0; }

service Other { rpc Ping(.emojivoto.v1.VoteRequest) returns (stream) { option idempotency_level = IDEMPOTENCY_UNKNOWN; } }
"#;

#[test]
fn proto_routes_name_every_rpc() {
    let routes = proto::routes(PROTO).unwrap();
    let got: Vec<(&str, &str, bool)> = routes
        .iter()
        .map(|r| (r.name.as_str(), r.path_regex.as_str(), r.retryable))
        .collect();
    assert_eq!(
        got,
        [
            ("VotePoop", r"/emojivoto\.v1\.VotingService/VotePoop", false),
            ("Watch", r"/emojivoto\.v1\.VotingService/Watch", false),
            ("Get", r"/emojivoto\.v1\.VotingService/Get", true),
            ("Ping", r"/emojivoto\.v1\.Other/Ping", false),
        ]
    );
    assert!(routes.iter().all(|r| r.method == "POST"));
}

#[test]
fn proto_without_package_has_no_dot() {
    let routes = proto::routes("service S { rpc M(A) returns (B); }").unwrap();
    assert_eq!(routes[0].path_regex, "/S/M");
}

#[test]
fn bad_protos_say_where() {
    let err = |text: &str| proto::routes(text).unwrap_err().to_string();
    assert_eq!(
        err("message A {}"),
        "no routes found: the file declares no service with an rpc"
    );
    assert_eq!(err("/* open"), "1:1: unterminated /* comment");
    assert_eq!(err("\n option x = \"open;\n"), "2:13: unterminated string");
    assert_eq!(
        err("service S {\n  rpc M(A) gives (B);\n}"),
        "2:12: expected `returns`, found `gives`"
    );
    assert!(err("service S { rpc M(A) returns (B);").contains("found the end of the file"));
    assert_eq!(err("}"), "1:1: unexpected `}`");
}

#[test]
fn deep_protos_are_scanned_without_recursing() {
    let deep = format!(
        "message M {}{} service S {{ rpc M(A) returns (B); }}",
        "{".repeat(200_000),
        "}".repeat(200_000)
    );
    assert_eq!(proto::routes(&deep).unwrap().len(), 1);
}
