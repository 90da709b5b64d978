//! Fuzzing the two spec readers with the runner the metrics parser uses (`MESH_FUZZ_CASES=N`,
//! `cargo xtask fuzz`). Properties: no input panics or takes long, and every route a spec gives
//! has a regex that compiles and matches the route's own path, anchored as proxies match it.

use proptest::prelude::*;

use super::{Route, openapi, proto};
use crate::metrics::fuzz::runner::fuzz;

/// Every route's regex matches `path` (its path with each param filled in) in full.
fn check_routes(routes: &[Route], path_of: impl Fn(&Route) -> String) -> Result<(), TestCaseError> {
    prop_assert!(!routes.is_empty(), "Ok with no routes");
    for route in routes {
        let re = regex::Regex::new(&format!("^(?:{})$", route.path_regex))
            .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", route.path_regex)))?;
        let path = path_of(route);
        prop_assert!(
            re.is_match(&path),
            "{:?} does not match {path:?}",
            route.path_regex
        );
    }
    Ok(())
}

/// An OpenAPI route's path from its name (`GET /a/{b}`), its params filled with one segment.
fn filled(route: &Route) -> String {
    let path = route.name.split_once(' ').map_or("", |(_, p)| p);
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push('x');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn proto_token_soup() {
    let token = prop::sample::select(
        &[
            "service",
            "rpc",
            "returns",
            "stream",
            "package",
            "option",
            "message",
            "enum",
            "idempotency_level",
            "IDEMPOTENT",
            "=",
            "{",
            "}",
            "(",
            ")",
            ";",
            "\"",
            "'",
            "\\",
            "//",
            "/*",
            "*/",
            "\n",
            " ",
            "a",
            "B.c",
            ".d",
            "é",
            "[",
            "]",
        ][..],
    );
    fuzz(
        "profile: proto token soup",
        512,
        prop::collection::vec(token, 0..80),
        |tokens| {
            let text = tokens.join(" ");
            match proto::routes(&text) {
                Ok(routes) => check_routes(&routes, |r| {
                    // The regex is the quoted path: unquote it to get the path back.
                    r.path_regex.replace('\\', "")
                }),
                Err(_) => Ok(()),
            }
        },
    );
}

/// Well-formed files with noise where protobuf allows it (comments, options with nested
/// braces and braces in strings, messages): every rpc written is found, in order, and no other.
#[test]
fn proto_services() {
    let noise = prop::sample::select(
        &[
            "",
            "// a } comment\n",
            "/* { */",
            "option (x) = { a: { b: \"}{\" } };",
            "message M { message N { string service = 1; } }",
            ";",
            "option java_package = 'rpc';",
        ][..],
    );
    let rpc = (
        "[A-Z][a-zA-Z0-9_]{0,8}",
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(&["", "{}", "{ option idempotency_level = IDEMPOTENT; }"][..]),
        noise.clone(),
    );
    let service = (
        "[A-Z][a-zA-Z0-9]{0,8}",
        prop::collection::vec(rpc, 0..4),
        noise.clone(),
    );
    let package = prop::sample::select(&["", "a", "a.b_c.v1"][..]);
    fuzz(
        "profile: proto services",
        256,
        (package, prop::collection::vec(service, 0..4), noise),
        |(package, services, head)| {
            let mut text = format!("syntax = \"proto3\";\n{head}\n");
            if !package.is_empty() {
                text.push_str(&format!("package {package};\n"));
            }
            let mut expected = Vec::new();
            for (service, rpcs, noise) in &services {
                text.push_str(&format!("service {service} {{ {noise}\n"));
                for (name, stream_in, stream_out, body, noise) in rpcs {
                    let s = |on: &bool| if *on { "stream " } else { "" };
                    let end = if body.is_empty() { ";" } else { body };
                    text.push_str(&format!(
                        "  rpc {name}({}Req) returns ({}Rsp) {end} {noise}\n",
                        s(stream_in),
                        s(stream_out)
                    ));
                    let prefix = if package.is_empty() {
                        String::new()
                    } else {
                        format!("{package}.")
                    };
                    expected.push((
                        name.clone(),
                        format!("/{prefix}{service}/{name}").replace('.', "\\."),
                        body.contains("IDEMPOTENT"),
                    ));
                }
                text.push_str("}\n");
            }
            match proto::routes(&text) {
                Ok(routes) => {
                    let got: Vec<(String, String, bool)> = routes
                        .into_iter()
                        .map(|r| (r.name, r.path_regex, r.retryable))
                        .collect();
                    prop_assert_eq!(got, expected, "in {}", text);
                }
                Err(e) => prop_assert!(expected.is_empty(), "{e} in {text}"),
            }
            Ok(())
        },
    );
}

#[test]
fn openapi_paths() {
    let segment = prop::sample::select(
        &[
            "a", "b.c", "{id}", "{x.y}", "a+b", "(g)", "*", "?q", "[r]", "^", "$", "|", "\\", "{",
            "}", "é", "%20", "",
        ][..],
    );
    let path = prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")));
    let method = prop::sample::select(&["get", "put", "trace", "parameters", "x-y"][..]);
    let base = prop::sample::select(&["", "/", "/v1", "/a.b/", "{x}"][..]);
    fuzz(
        "profile: openapi paths",
        512,
        (base, prop::collection::vec((path, method), 0..6)),
        |(base, ops)| {
            let mut paths = serde_json::Map::new();
            for (path, method) in ops {
                paths.insert(
                    path,
                    serde_json::json!({ method: {"responses": {"5XX": {}, "200": {}}} }),
                );
            }
            let spec = serde_json::json!({"swagger": "2.0", "basePath": base, "paths": paths});
            match openapi::routes(&spec.to_string()) {
                Ok(routes) => check_routes(&routes, filled),
                Err(_) => Ok(()),
            }
        },
    );
}

#[test]
fn openapi_arbitrary_text() {
    fuzz(
        "profile: openapi arbitrary text",
        256,
        prop::collection::vec(any::<u8>(), 0..300),
        |bytes| {
            let text = format!(
                "openapi: 3.0.0\npaths:\n{}",
                String::from_utf8_lossy(&bytes)
            );
            let _ = openapi::routes(&text);
            Ok(())
        },
    );
}
