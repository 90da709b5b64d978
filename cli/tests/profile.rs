//! `mesh profile` through the real binary: goldens for every source (text and JSON), the error
//! cases with their exit codes, and every profile written checked against the ServiceProfile CRD
//! schema `mesh install --crds` ships, as the API server would check it.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::process::Output;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use mesh_testkube::FakeKube;
use serde_json::Value;
use support::{INSTALL_CERTS, check_golden, run_with_stdin, testdata, text};

/// Each case: its golden's name, and the arguments after `mesh profile`.
const CASES: &[(&str, &[&str])] = &[
    ("template", &["--template", "-n", "emojivoto", "web-svc"]),
    (
        "books",
        &["--open-api", "books.openapi.yaml", "-n", "shop", "books"],
    ),
    (
        "petstore",
        &[
            "--open-api",
            "petstore.swagger.json",
            "--cluster-domain",
            "example.org",
            "pets",
        ],
    ),
    (
        "voting",
        &["--proto", "voting.proto", "-n", "emojivoto", "voting-svc"],
    ),
];

/// `mesh profile` with no cluster configured, whatever the machine has: the domain is then
/// cluster.local unless a flag names it.
fn profile(args: &[&str]) -> Output {
    support::mesh_offline()
        .current_dir(testdata().join("profile"))
        .arg("profile")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn goldens_in_yaml_and_json() {
    let mut failures = Vec::new();
    for (name, args) in CASES {
        for (format, ext) in [("yaml", "yaml"), ("json", "json")] {
            let out = profile(&[args, &["-o", format][..]].concat());
            assert!(
                out.status.success(),
                "{name} -o {format}: {}",
                text(&out.stderr)
            );
            assert!(out.stderr.is_empty(), "{name}: {}", text(&out.stderr));
            let path = testdata().join(format!("profile/{name}.golden.{ext}"));
            if let Err(e) = check_golden(&path, &text(&out.stdout)) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The YAML and the JSON of a profile are the same object, and YAML is the default.
#[test]
fn yaml_and_json_agree() {
    for (name, args) in CASES {
        let default = profile(args);
        let yaml = profile(&[args, &["-o", "yaml"][..]].concat());
        let json = profile(&[args, &["-o", "json"][..]].concat());
        assert_eq!(default.stdout, yaml.stdout, "{name}: default is not YAML");
        let from_yaml = mesh_inject::yaml::to_json_documents(&text(&yaml.stdout)).unwrap();
        let from_json: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(from_yaml, [from_json], "{name}");
    }
}

#[test]
fn stdin_is_read_for_a_dash() {
    let spec = std::fs::read(testdata().join("profile/voting.proto")).unwrap();
    let mut cmd = support::mesh_offline();
    cmd.args(["profile", "--proto", "-", "-n", "emojivoto", "voting-svc"]);
    let out = run_with_stdin(&mut cmd, &spec);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, profile(CASES[3].1).stdout);
}

const LONG_SERVICE: &str = "s23456789012345678901234567890123456789012345678901234567890123";
const LONG_LABEL: &str = "n23456789012345678901234567890123456789012345678901234567890123";
const LONG_DOMAIN: &str = "d23456789012345678901234567890123456789012345678901234567890123.\
    e23456789012345678901234567890123456789012345678901234567890123";

/// Every failure, its exit code and its message, as one golden: bad input exits 1, a usage or
/// runtime error (a bad flag, a file that cannot be read) 2, as the README's exit codes say,
/// and neither writes anything to stdout.
#[test]
fn errors() {
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("missing file", b"", &["--open-api", "nope.yaml", "svc"]),
        ("not a spec", b"", &["--open-api", "voting.proto", "svc"]),
        (
            "no paths",
            b"openapi: 3.0.0\npaths: {}\n",
            &["--open-api", "-", "svc"],
        ),
        (
            "old swagger",
            b"swagger: '1.2'\n",
            &["--open-api", "-", "svc"],
        ),
        (
            "bad timeout",
            b"swagger: '2.0'\npaths:\n  /a:\n    get:\n      x-linkerd-timeout: 5 seconds\n",
            &["--open-api", "-", "svc"],
        ),
        (
            "broken yaml",
            b"openapi: 3.0.0\npaths: [\n",
            &["--open-api", "-", "svc"],
        ),
        ("no rpcs", b"message A {}\n", &["--proto", "-", "svc"]),
        (
            "bad rpc",
            b"service S {\n  rpc M(A) gives (B);\n}\n",
            &["--proto", "-", "svc"],
        ),
        ("not utf-8", b"\xff\xfe", &["--proto", "-", "svc"]),
        ("no source", b"", &["svc"]),
        (
            "two sources",
            b"",
            &["--template", "--proto", "voting.proto", "svc"],
        ),
        ("bad service", b"", &["--template", "Web_Svc"]),
        ("bad namespace", b"", &["--template", "-n", "Emoji", "web"]),
        (
            "bad domain",
            b"",
            &["--template", "--cluster-domain", "a..b", "web"],
        ),
        (
            "name too long",
            b"",
            &[
                "--template",
                "-n",
                LONG_LABEL,
                "--cluster-domain",
                LONG_DOMAIN,
                LONG_SERVICE,
            ],
        ),
    ];
    let mut report = String::new();
    for (what, stdin, args) in cases {
        let mut cmd = support::mesh_offline();
        cmd.current_dir(testdata().join("profile"))
            .arg("profile")
            .args(*args);
        let out = run_with_stdin(&mut cmd, stdin);
        assert!(out.stdout.is_empty(), "{what}: wrote {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        // clap's usage errors end with a usage block; its first line is what matters here.
        let first = stderr.lines().next().unwrap_or_default();
        report.push_str(&format!(
            "# {what}: mesh profile {}\nexit {}: {first}\n\n",
            args.join(" "),
            out.status.code().unwrap()
        ));
    }
    check_golden(&testdata().join("profile/errors.golden.txt"), &report).unwrap();
}

#[test]
fn oversized_input_is_refused() {
    let big = vec![b' '; (16 << 20) + 1];
    let mut cmd = support::mesh_offline();
    cmd.args(["profile", "--open-api", "-", "svc"]);
    let out = run_with_stdin(&mut cmd, &big);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("larger than 16 MiB"),
        "{}",
        text(&out.stderr)
    );
}

/// The ServiceProfile schema of the given version from `mesh install --crds`.
fn schema(version: &str) -> JSONSchemaProps {
    let out = support::mesh_offline()
        .current_dir(testdata().join("install"))
        .args(["install", "--crds"])
        .args(INSTALL_CERTS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let crds = mesh_inject::yaml::to_json_documents(&text(&out.stdout)).unwrap();
    let crd = crds
        .into_iter()
        .find(|c| c["metadata"]["name"] == "serviceprofiles.linkerd.io")
        .expect("the ServiceProfile CRD");
    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    crd.spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .unwrap()
}

/// What the API server would refuse in `value` under `schema`: wrong types, missing required
/// fields, and unknown fields (which a structural schema prunes, losing them silently).
fn violations(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<String>) {
    let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
    let type_ok = match (schema.type_.as_deref(), value) {
        _ if int_or_string => value.is_i64() || value.is_string(),
        (None, _) => true,
        (Some("object"), Value::Object(_)) | (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("number"), Value::Number(_)) => true,
        _ => false,
    };
    if !type_ok {
        out.push(format!("{path}: {value} is not {:?}", schema.type_));
        return;
    }
    if schema.format.as_deref() == Some("int32")
        && value.as_i64().is_some_and(|n| i32::try_from(n).is_err())
    {
        out.push(format!("{path}: {value} does not fit int32"));
    }
    match value {
        Value::Object(map) => {
            for key in schema.required.iter().flatten() {
                if !map.contains_key(key) {
                    out.push(format!("{path}: no {key}"));
                }
            }
            let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match schema.properties.as_ref().and_then(|p| p.get(key)) {
                    Some(child_schema) => violations(child_schema, child, &child_path, out),
                    None if preserve => {}
                    None => out.push(format!("{child_path}: unknown field")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (i, child) in items.iter().enumerate() {
                    violations(item, child, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The top of every object the API server fills in or checks itself.
fn strip_meta(profile: &Value) -> Value {
    let mut body = profile.clone();
    let object = body.as_object_mut().unwrap();
    assert_eq!(object.remove("apiVersion").unwrap(), "linkerd.io/v1alpha2");
    assert_eq!(object.remove("kind").unwrap(), "ServiceProfile");
    object.remove("metadata").unwrap();
    body
}

#[test]
fn every_profile_passes_the_crd_schema() {
    let schema = schema("v1alpha2");
    for (name, args) in CASES {
        let out = profile(args);
        let docs = mesh_inject::yaml::to_json_documents(&text(&out.stdout)).unwrap();
        assert_eq!(docs.len(), 1, "{name}");
        let mut found = Vec::new();
        violations(&schema, &strip_meta(&docs[0]), "", &mut found);
        assert!(found.is_empty(), "{name}: {found:#?}");
        let routes = docs[0]["spec"]["routes"].as_array().unwrap();
        assert!(!routes.is_empty(), "{name}: no routes");
        for route in routes {
            let condition = &route["condition"];
            assert!(condition["pathRegex"].is_string() && condition["method"].is_string());
        }
    }
}

/// The check above can fail: a misspelt field, a wrong type and a missing name are caught.
#[test]
fn the_schema_check_catches_mistakes() {
    let schema = schema("v1alpha2");
    let bad = serde_json::json!({"spec": {"routes": [
        {"condition": {"pathRegex": 5}, "isRetriable": true},
    ]}});
    let mut found = Vec::new();
    violations(&schema, &bad, "", &mut found);
    assert_eq!(
        found,
        [
            ".spec.routes[0]: no name",
            ".spec.routes[0].condition.pathRegex: 5 is not Some(\"string\")",
            ".spec.routes[0].isRetriable: unknown field",
        ]
    );
}

/// The profile's name is what proxies look it up by, and it lives in the service's namespace.
#[test]
fn names_follow_the_service() {
    let out = profile(&[
        "--proto",
        "voting.proto",
        "-n",
        "emojivoto",
        "voting-svc",
        "-o",
        "json",
    ]);
    let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        profile["metadata"]["name"],
        "voting-svc.emojivoto.svc.cluster.local"
    );
    assert_eq!(profile["metadata"]["namespace"], "emojivoto");
}

/// The regexes do what the route names promise, matched whole as proxies match them: each
/// OpenAPI route's path with its params filled in, each rpc's gRPC path, and not their near
/// misses (a regex metacharacter left unescaped would match those).
#[test]
fn path_regexes_match_their_routes() {
    let whole = |re: &str| regex::Regex::new(&format!("^(?:{re})$")).unwrap();
    let param = regex::Regex::new(r"\{[^}]*\}").unwrap();
    for (name, args) in &CASES[1..3] {
        let out = profile(&[args, &["-o", "json"][..]].concat());
        let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
        for route in profile["spec"]["routes"].as_array().unwrap() {
            let (method, path) = route["name"].as_str().unwrap().split_once(' ').unwrap();
            assert_eq!(route["condition"]["method"], method, "{name}");
            let re = whole(route["condition"]["pathRegex"].as_str().unwrap());
            let filled = param.replace_all(path, "42");
            assert!(re.is_match(&filled), "{name}: {re} does not match {filled}");
            assert!(!re.is_match(&format!("{filled}/more")), "{name}: {re}");
            if path.contains('{') {
                let two = param.replace_all(path, "4/2");
                assert!(!re.is_match(&two), "{name}: {re} matches {two}");
            }
            if path.contains('.') {
                assert!(!re.is_match(&filled.replace('.', "x")), "{name}: {re}");
            }
        }
    }
    let out = profile(&["--proto", "voting.proto", "svc", "-o", "json"]);
    let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
    let regexes: Vec<regex::Regex> = profile["spec"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| whole(r["condition"]["pathRegex"].as_str().unwrap()))
        .collect();
    assert!(regexes[0].is_match("/emojivoto.v1.VotingService/VotePoop"));
    assert!(!regexes[0].is_match("/emojivotoXv1.VotingService/VotePoop"));
    assert!(regexes[4].is_match("/emojivoto.v1.Leaderboard/Top"));
}

/// With a cluster, the domain is the installed control plane's, as Linkerd reads it; a flag
/// overrides it, and --ignore-cluster takes cluster.local without asking.
#[test]
fn the_cluster_domain_comes_from_the_installed_control_plane() {
    let server = FakeKube::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let run = |args: &[&str]| {
        support::mesh_offline()
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["profile", "--template", "-o", "json", "web"])
            .args(args)
            .output()
            .unwrap()
    };
    let name = |out: &Output| -> String {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
        profile["metadata"]["name"].as_str().unwrap().to_string()
    };

    let missing = run(&[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stdout.is_empty());
    assert!(
        text(&missing.stderr).contains(
            "mesh is not installed in namespace linkerd (no ConfigMap linkerd/linkerd-config)"
        ),
        "{}",
        text(&missing.stderr)
    );
    assert_eq!(
        name(&run(&["--ignore-cluster"])),
        "web.default.svc.cluster.local"
    );

    server
        .create(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "linkerd-config", "namespace": "linkerd"},
            "data": {"values": "clusterDomain: corp.example\nproxy:\n  logLevel: info\n"},
        }))
        .unwrap();
    assert_eq!(name(&run(&[])), "web.default.svc.corp.example");
    assert_eq!(
        name(&run(&["--cluster-domain", "other.test."])),
        "web.default.svc.other.test"
    );
    assert_eq!(
        name(&run(&["--ignore-cluster"])),
        "web.default.svc.cluster.local"
    );

    // Without -n, the namespace is the kubeconfig context's, as kubectl takes it.
    let shop = dir.path().join("shop-kubeconfig");
    std::fs::write(
        &shop,
        server
            .kubeconfig()
            .replace("namespace: default", "namespace: shop"),
    )
    .unwrap();
    let out = support::mesh_offline()
        .arg("--kubeconfig")
        .arg(&shop)
        .args(["profile", "--template", "-o", "json", "web"])
        .output()
        .unwrap();
    assert_eq!(name(&out), "web.shop.svc.corp.example");
    let out = support::mesh_offline()
        .arg("--kubeconfig")
        .arg(&shop)
        .args([
            "profile",
            "--template",
            "--ignore-cluster",
            "-n",
            "emojivoto",
            "-o",
            "json",
            "web",
        ])
        .output()
        .unwrap();
    assert_eq!(name(&out), "web.emojivoto.svc.cluster.local");

    // A control plane installed elsewhere is found through -L, as every command finds it.
    let elsewhere = support::mesh_offline()
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-L", "mesh-system", "profile", "--template", "web"])
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(2));
    assert!(text(&elsewhere.stderr).contains("namespace mesh-system"));

    // A bad spec fails before the cluster is asked anything.
    server.clear_requests();
    let mut cmd = support::mesh_offline();
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["profile", "--proto", "-", "web"]);
    let out = run_with_stdin(&mut cmd, b"message A {}");
    assert_eq!(out.status.code(), Some(1));
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// The cases Linkerd's own unit tests pin down (its `pkg/profiles` tests; no profile fixtures
/// ship with its CLI testdata), compared as objects: the same input gives the same profile.
#[test]
fn linkerds_own_examples_give_the_same_profiles() {
    let run = |flag: &str, input: &str| -> Value {
        let mut cmd = support::mesh_offline();
        cmd.args(["profile", flag, "-", "-n", "myns", "mysvc", "-o", "json"]);
        let out = run_with_stdin(&mut cmd, input.as_bytes());
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let meta = serde_json::json!({"name": "mysvc.myns.svc.cluster.local", "namespace": "myns"});

    let swagger =
        r#"{"swagger": "2.0", "paths": {"/authors/{id}": {"post": {"responses": {"500": {}}}}}}"#;
    assert_eq!(
        run("--open-api", swagger),
        serde_json::json!({
            "apiVersion": "linkerd.io/v1alpha2",
            "kind": "ServiceProfile",
            "metadata": meta,
            "spec": {"routes": [{
                "name": "POST /authors/{id}",
                "condition": {"method": "POST", "pathRegex": "/authors/[^/]*"},
                "responseClasses": [
                    {"condition": {"status": {"min": 500, "max": 500}}, "isFailure": true},
                ],
            }]},
        })
    );

    let proto = "syntax = \"proto3\";\n\npackage emojivoto.v1;\n\nmessage VoteRequest {\n}\n\n\
        message VotingResult {\n    string Shortcode = 1;\n    int32 Votes = 2;\n}\n\n\
        service VotingService {\n\trpc VotePoop (VoteRequest) returns (VoteResponse);\n}";
    assert_eq!(
        run("--proto", proto),
        serde_json::json!({
            "apiVersion": "linkerd.io/v1alpha2",
            "kind": "ServiceProfile",
            "metadata": meta,
            "spec": {"routes": [{
                "name": "VotePoop",
                "condition": {"method": "POST", "pathRegex": r"/emojivoto\.v1\.VotingService/VotePoop"},
            }]},
        })
    );
}
