//! Golden tests for `mesh install` and `mesh uninstall`, through the real binary.
//!
//! Each `testdata/install/<case>.args` holds the arguments (the first is the subcommand), run in
//! testdata/install so paths are relative and stable. A successful run is compared with
//! `<case>.golden.yaml` (or `.golden.json` for `-o json`, or `.stdout` for what is not a manifest);
//! a failing run with `<case>.error`, which holds the exit code and stderr, and must write nothing
//! to stdout. `UPDATE_GOLDENS=1` rewrites them. Certificates come from the fixtures in
//! testdata/install/certs, so the output is the same on every run.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::{INSTALL_CERTS, check_golden, mesh, testdata, text};

fn dir() -> PathBuf {
    testdata().join("install")
}

struct Case {
    name: String,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(dir())
        .expect("testdata/install")
        .filter_map(|e| {
            let file = e.ok()?.file_name().into_string().ok()?;
            let name = file.strip_suffix(".args")?.to_owned();
            let args = std::fs::read_to_string(dir().join(&file)).unwrap();
            let args = args
                .split_whitespace()
                .flat_map(|a| match a {
                    // A shorthand for the three fixture certificate flags.
                    "@certs" => INSTALL_CERTS.iter().map(|s| s.to_string()).collect(),
                    a => vec![a.to_owned()],
                })
                .collect();
            Some(Case { name, args })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 10, "expected the full set of install cases");
    cases
}

fn run(args: &[String]) -> std::process::Output {
    support::mesh_offline()
        .current_dir(dir())
        .args(args)
        .output()
        .expect("run mesh")
}

#[test]
fn goldens() {
    let mut failures = Vec::new();
    for case in cases() {
        let out = run(&case.args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let code = out.status.code().unwrap_or(-1);
        let result = if code == 0 {
            let file = if case.args.iter().any(|a| a == "--show-values") {
                format!("{}.stdout", case.name)
            } else if stdout.starts_with('{') {
                format!("{}.golden.json", case.name)
            } else {
                format!("{}.golden.yaml", case.name)
            };
            if stderr.is_empty() {
                check_golden(&dir().join(file), &stdout)
            } else {
                Err(format!("succeeded but wrote to stderr:\n{stderr}"))
            }
        } else if !stdout.is_empty() {
            Err(format!(
                "failed with exit {code} but wrote to stdout:\n{stdout}"
            ))
        } else {
            check_golden(
                &dir().join(format!("{}.error", case.name)),
                &format!("exit: {code}\n{stderr}"),
            )
        };
        if let Err(e) = result {
            failures.push(format!("case {}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The documents of a YAML stream, read with YAML 1.1 rules as kubectl reads them.
pub fn documents(text: &str) -> Vec<Value> {
    mesh_inject::yaml::to_json_documents(text).unwrap()
}

fn install(args: &[&str]) -> String {
    let out = mesh()
        .current_dir(dir())
        .args(args)
        .output()
        .expect("run mesh");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_same_certificates_and_values_give_the_same_bytes() {
    let args: Vec<&str> = ["install", "--ha"]
        .iter()
        .chain(INSTALL_CERTS)
        .copied()
        .collect();
    assert_eq!(install(&args), install(&args));
}

#[test]
fn generated_certificates_differ_per_run_and_chain() {
    let (a, b) = (install(&["install"]), install(&["install"]));
    let issuer = |text: &str| {
        documents(text)
            .into_iter()
            .find(|d| d["metadata"]["name"] == "linkerd-identity-issuer")
            .unwrap()["data"]["crt.pem"]
            .clone()
    };
    assert_ne!(issuer(&a), issuer(&b), "each run makes a new issuer");
    // Everything but the certificates and what is derived from them is the same.
    let strip = |text: &str| {
        documents(text)
            .into_iter()
            .filter(|d| !matches!(d["kind"].as_str(), Some("Secret")))
            .map(|mut d| {
                if let Some(data) = d.pointer_mut("/data/ca-bundle.crt") {
                    *data = Value::Null;
                }
                if let Some(hooks) = d.pointer_mut("/webhooks/0/clientConfig/caBundle") {
                    *hooks = Value::Null;
                }
                if let Some(a) = d.pointer_mut("/spec/template/metadata/annotations") {
                    a.as_object_mut()
                        .unwrap()
                        .remove("linkerd.io/trust-root-sha256");
                }
                strip_env(&mut d);
                d
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
}

/// Removes env values taken from the trust anchors (the proxy may carry them inline).
fn strip_env(doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            if map.get("name") == Some(&Value::from("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS")) {
                map.remove("value");
            }
            map.values_mut().for_each(strip_env);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_env),
        _ => {}
    }
}

#[test]
fn every_case_is_checked() {
    // Each golden or error file belongs to a case, so none is left over from a removed case.
    let names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some((stem, _)) = file.split_once('.') else {
            continue;
        };
        if ["args", "golden.yaml", "golden.json", "stdout", "error"]
            .iter()
            .any(|ext| file.ends_with(&format!(".{ext}")))
        {
            assert!(names.iter().any(|n| n == stem), "{file} has no .args case");
        }
    }
}

/// What --show-values prints is a values file: fed back through -f (here on stdin) it renders the
/// same control plane.
#[test]
fn shown_values_fed_back_give_the_same_install() {
    let shown = install(&[
        "install",
        "--show-values",
        "--ha",
        "--set",
        "proxy.logLevel=on",
    ]);
    let mut args: Vec<&str> = vec!["install", "-f", "-"];
    args.extend(INSTALL_CERTS);
    let out = support::run_with_stdin(mesh().current_dir(dir()).args(&args), shown.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut direct: Vec<&str> = vec!["install", "--ha", "--set", "proxy.logLevel=on"];
    direct.extend(INSTALL_CERTS);
    assert_eq!(text(&out.stdout), install(&direct));
}

/// The injector reads linkerd-config only at start-up; its pods roll when the values change.
#[test]
fn the_injector_rolls_when_the_values_change() {
    let checksum = |extra: &[&str]| {
        let mut args = vec!["install"];
        args.extend(extra);
        args.extend(INSTALL_CERTS);
        documents(&install(&args))
            .into_iter()
            .find(|d| {
                d["kind"] == "Deployment" && d["metadata"]["name"] == "linkerd-proxy-injector"
            })
            .unwrap()["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .clone()
    };
    let before = checksum(&[]);
    assert!(before.as_str().is_some_and(|s| s.len() == 64), "{before}");
    assert_eq!(before, checksum(&[]));
    assert_ne!(before, checksum(&["--set", "proxy.logLevel=debug"]));
}
