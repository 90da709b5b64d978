use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use super::iptables::{SavedTable, Step, plan, split_words};
use super::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/proxy-init")
}

/// What `mesh-proxy init ARGS` prints for a dry run, or `# error: …` lines when the arguments
/// are rejected.
fn render(args: &[String]) -> String {
    let argv = std::iter::once("mesh-proxy init".to_string()).chain(args.iter().cloned());
    let parsed = match InitArgs::try_parse_from(argv) {
        Ok(parsed) => parsed,
        Err(err) => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or_default();
            return format!("# error: {}\n", first.trim_start_matches("error: "));
        }
    };
    match Config::from_args(&parsed) {
        Ok(config) => dry_run(&config),
        Err(errors) => errors.iter().map(|e| format!("# error: {e}\n")).collect(),
    }
}

/// Each `testdata/proxy-init/<case>.args` (one argument per line) against `<case>.golden.txt`.
/// `UPDATE_GOLDENS=1` rewrites the goldens.
#[test]
fn goldens() {
    let update = std::env::var_os("UPDATE_GOLDENS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "args"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 5,
        "expected the proxy-init cases in {:?}",
        testdata()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<String> = std::fs::read_to_string(case)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let actual = render(&args);
        let golden = case.with_extension("golden.txt");
        if update {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                golden.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "goldens differ (UPDATE_GOLDENS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}

fn config(args: &[&str]) -> Config {
    let argv = std::iter::once("mesh-proxy init").chain(args.iter().copied());
    Config::from_args(&InitArgs::try_parse_from(argv).unwrap()).unwrap()
}

fn usage_errors(args: &[&str]) -> Vec<UsageError> {
    let argv = std::iter::once("mesh-proxy init").chain(args.iter().copied());
    Config::from_args(&InitArgs::try_parse_from(argv).unwrap()).unwrap_err()
}

#[test]
fn clap_definition_is_consistent() {
    InitArgs::command().debug_assert();
}

#[test]
fn defaults_match_linkerd() {
    let c = config(&[]);
    assert_eq!(c.inbound_proxy_port, 4143);
    assert_eq!(c.outbound_proxy_port, 4140);
    assert_eq!(c.proxy_uid, 2102);
    assert_eq!(c.families.len(), 2, "IPv6 rules are on unless --ipv6=false");
    assert_eq!(c.families[0].bin, "iptables-legacy");
    assert_eq!(c.families[1].bin, "ip6tables-legacy");
    assert_eq!(c.families[1].save_bin, "ip6tables-legacy-save");
    assert_eq!(c.mode, Mode::Apply);
}

#[test]
fn bool_flags_take_pflag_forms() {
    assert_eq!(config(&["--ipv6=false"]).families.len(), 1);
    assert_eq!(config(&["--ipv6"]).families.len(), 2);
    assert_eq!(config(&["--simulate"]).mode, Mode::DryRun);
    assert_eq!(config(&["--simulate=true"]).mode, Mode::DryRun);
    assert_eq!(config(&["--dry-run=false"]).mode, Mode::Apply);
    assert!(config(&["-w"]).wait_for_lock);
}

#[test]
fn list_flags_split_commas_repeat_and_skip_empty_values() {
    let c = config(&[
        "--inbound-ports-to-ignore",
        "4190,4191",
        "--inbound-ports-to-ignore",
        "8000-8100",
        "--outbound-ports-to-ignore",
        "",
    ]);
    let shown: Vec<String> = c
        .inbound_ports_to_ignore
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(shown, ["4190", "4191", "8000:8100"]);
    assert!(c.outbound_ports_to_ignore.is_empty());
}

#[test]
fn every_bad_value_is_reported_with_its_flag() {
    let errors = usage_errors(&[
        "--incoming-proxy-port",
        "0",
        "--outgoing-proxy-port",
        "70000",
        "--inbound-ports-to-ignore",
        "9000-8000,x",
        "--subnets-to-ignore",
        "10.0.0.0/33",
        "--proxy-uid",
        "-1",
    ]);
    let flags: Vec<&str> = errors.iter().map(|e| e.flag).collect();
    assert_eq!(
        flags,
        [
            "--incoming-proxy-port",
            "--outgoing-proxy-port",
            "--proxy-uid",
            "--inbound-ports-to-ignore",
            "--inbound-ports-to-ignore",
            "--subnets-to-ignore",
        ]
    );
    assert!(errors[3].to_string().contains("9000-8000"), "{}", errors[3]);
}

#[test]
fn ipv6_needs_a_binary_name_it_can_derive() {
    let errors = usage_errors(&["--firewall-bin-path", "/opt/fw", "--ipv6=true"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].flag, "--firewall-bin-path");
    let c = config(&[
        "--firewall-bin-path",
        "/usr/sbin/iptables-nft",
        "--firewall-save-bin-path",
        "/usr/sbin/iptables-nft-save",
    ]);
    assert_eq!(c.families[1].bin, "/usr/sbin/ip6tables-nft");
    assert_eq!(c.families[1].save_bin, "/usr/sbin/ip6tables-nft-save");
}

#[test]
fn ipv6_subnets_need_ipv6_rules() {
    let errors = usage_errors(&["--ipv6=false", "--subnets-to-ignore", "fd00::/8"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].flag, "--subnets-to-ignore");
}

#[test]
fn multiport_rules_hold_at_most_fifteen_ports_counting_a_range_as_two() {
    // 13 single ports then a range: 13 + 2 = 15 fits; the next port starts a new rule.
    let ports: Vec<String> = (1..=13).map(|p| (1000 + p).to_string()).collect();
    let list = format!("{},2000-2010,3000", ports.join(","));
    let c = config(&["--ipv6=false", "--outbound-ports-to-ignore", &list]);
    let [_, outbound] = rules::chains(&c, &c.families[0]);
    let multiport: Vec<String> = outbound
        .rules
        .iter()
        .filter_map(|spec| {
            spec.iter()
                .position(|a| a == "--dports")
                .map(|i| spec[i + 1].clone())
        })
        .collect();
    assert_eq!(multiport.len(), 2, "{multiport:?}");
    assert!(multiport[0].ends_with(",2000:2010"), "{multiport:?}");
    assert_eq!(multiport[1], "3000");
    for group in &multiport {
        let slots: usize = group
            .split(',')
            .map(|p| if p.contains(':') { 2 } else { 1 })
            .sum();
        assert!(slots <= 15, "{group}");
    }
}

#[test]
fn split_words_undoes_iptables_save_quoting() {
    assert_eq!(
        split_words(r#"-A OUTPUT -m comment --comment "a \"b\" c" -j X"#),
        [
            "-A",
            "OUTPUT",
            "-m",
            "comment",
            "--comment",
            r#"a "b" c"#,
            "-j",
            "X"
        ]
    );
    assert_eq!(split_words(r#"--comment """#), ["--comment", ""]);
}

/// iptables-save output after a fresh install with the default rules (`--ipv6=false`), as
/// iptables-nft-save 1.8.9 printed it.
fn saved_after_install(c: &Config) -> String {
    let mut text = String::from(
        "# Generated by iptables-nft-save v1.8.9\n*nat\n:PREROUTING ACCEPT [0:0]\n\
         :INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         :PROXY_INIT_OUTPUT - [0:0]\n:PROXY_INIT_REDIRECT - [0:0]\n",
    );
    for chain in rules::chains(c, &c.families[0]) {
        text.push_str(&format!("-A {} {}\n", chain.hook, quote_save(&chain.jump)));
        for rule in &chain.rules {
            text.push_str(&format!("-A {} {}\n", chain.name, quote_save(rule)));
        }
    }
    text.push_str("COMMIT\n");
    text
}

fn quote_save(spec: &[String]) -> String {
    let mut out = Vec::new();
    let mut after_comment = false;
    for arg in spec {
        out.push(if after_comment {
            format!("\"{arg}\"")
        } else {
            arg.clone()
        });
        after_comment = arg == "--comment";
    }
    out.join(" ")
}

fn steps(c: &Config, saved: &str, exact: bool) -> Vec<Step> {
    let desired = rules::chains(c, &c.families[0]);
    let Ok(steps) = plan(&desired, &SavedTable::parse(saved), |_, _| {
        Ok::<_, std::convert::Infallible>(exact)
    });
    steps
}

#[test]
fn a_fresh_table_gets_chains_rules_and_jumps() {
    let c = config(&["--ipv6=false"]);
    let steps = steps(
        &c,
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        false,
    );
    assert_eq!(
        steps.first(),
        Some(&Step::NewChain("PROXY_INIT_REDIRECT".into()))
    );
    let jumps = steps
        .iter()
        .filter(|s| matches!(s, Step::Append { chain, .. } if chain == "PREROUTING" || chain == "OUTPUT"))
        .count();
    assert_eq!(jumps, 2);
}

#[test]
fn rules_already_in_place_need_no_steps() {
    let c = config(&[
        "--ipv6=false",
        "--outbound-ports-to-ignore",
        "5432,8000-8100",
    ]);
    assert_eq!(steps(&c, &saved_after_install(&c), true), []);
}

#[test]
fn a_rule_iptables_check_rejects_rebuilds_that_chain_only() {
    let c = config(&["--ipv6=false"]);
    let saved = saved_after_install(&c);
    let desired = rules::chains(&c, &c.families[0]);
    let Ok(steps) = plan(&desired, &SavedTable::parse(&saved), |chain, spec| {
        // Pretend the outbound redirect points at another port.
        Ok::<_, std::convert::Infallible>(
            !(chain == "PROXY_INIT_OUTPUT" && spec.iter().any(|a| a == "REDIRECT")),
        )
    });
    assert_eq!(
        steps.first(),
        Some(&Step::Flush("PROXY_INIT_OUTPUT".into()))
    );
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Flush(c) if c == "PROXY_INIT_REDIRECT"))
    );
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Append { chain, .. } if chain == "OUTPUT"))
    );
}

#[test]
fn changed_flags_rebuild_the_chain_and_keep_one_jump() {
    let old = config(&["--ipv6=false"]);
    let new = config(&["--ipv6=false", "--inbound-ports-to-ignore", "22"]);
    let steps = steps(&new, &saved_after_install(&old), true);
    assert_eq!(
        steps.first(),
        Some(&Step::Flush("PROXY_INIT_REDIRECT".into()))
    );
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::Append { chain, .. } if chain == "PREROUTING"))
    );
}

#[test]
fn duplicate_jumps_are_replaced_by_one() {
    let c = config(&["--ipv6=false"]);
    let mut saved = saved_after_install(&c);
    saved = saved.replace("COMMIT", "-A PREROUTING -j PROXY_INIT_REDIRECT\nCOMMIT");
    let steps = steps(&c, &saved, true);
    let deletes: Vec<&Step> = steps
        .iter()
        .filter(|s| matches!(s, Step::Delete { .. }))
        .collect();
    assert_eq!(deletes.len(), 2, "{steps:?}");
    assert_eq!(
        steps.last().map(Step::args).map(|a| a.join(" ")),
        Some("-t nat -A PREROUTING -m comment --comment proxy-init/install-proxy-init-prerouting -j PROXY_INIT_REDIRECT".to_string())
    );
}

/// Every `linkerd-init` container in Linkerd's own inject goldens must be accepted as is.
#[test]
fn linkerd_inject_goldens_args_are_accepted() {
    let Some(dir) = crate::conformance::linkerd_testdata() else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for args in linkerd_init_args(&text) {
            let argv = std::iter::once("mesh-proxy init".to_string()).chain(args.iter().cloned());
            let parsed = InitArgs::try_parse_from(argv)
                .unwrap_or_else(|e| panic!("{}: {args:?}: {e}", path.display()));
            Config::from_args(&parsed)
                .unwrap_or_else(|e| panic!("{}: {args:?}: {e:?}", path.display()));
            seen += 1;
        }
    }
    assert!(
        seen >= 10,
        "found only {seen} linkerd-init containers in {}",
        dir.display()
    );
}

/// The `args:` list that precedes each `linkerd2-proxy-init` command in a golden manifest.
fn linkerd_init_args(text: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.trim_end().ends_with("/linkerd2-proxy-init") {
            continue;
        }
        // Walk back over `command:` to the `- args:` line, collecting the list items.
        let Some(start) = lines[..i]
            .iter()
            .rposition(|l| l.trim_start().starts_with("- args:") || l.trim() == "args:")
        else {
            continue;
        };
        let args = lines[start + 1..i]
            .iter()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("- "))
            .map(|l| l.trim_start_matches("- ").trim_matches('"').to_string())
            .collect();
        found.push(args);
    }
    found
}

#[test]
fn dry_run_lines_quote_what_a_shell_would_split() {
    use super::iptables::shell_quote;
    assert_eq!(
        shell_quote("proxy-init/ignore-port-22,8000:8100"),
        "proxy-init/ignore-port-22,8000:8100"
    );
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}
