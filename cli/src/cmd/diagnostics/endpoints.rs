//! `mesh diagnostics endpoints AUTHORITY...`: what the destination service answers.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use mesh_names::labels::CONTROL_PLANE_COMPONENT;
use mesh_names::ports::DESTINATION_ADMIN;
use mesh_names::resources::{DESTINATION, DESTINATION_COMPONENT, ENDPOINTS_LOOKUP_PATH};

use crate::cmd::GlobalArgs;
use crate::exit::Failed;
use crate::metrics::{Scraper, Target};

/// Show the endpoints the destination service gives for authorities
///
/// Asks a ready destination controller, through the API server's pod proxy, what a proxy's
/// `Get` for each NAME:PORT would start with: the endpoints' namespace, IP, port, pod and
/// service, from the same index the proxies' streams read. An authority is a Service's DNS name
/// with a port (`web.emojivoto.svc.cluster.local:80`), a pod DNS name of a headless Service, or
/// a cluster IP with a port.
///
/// Exits 1 when an authority has no endpoints or names no Service.
///
/// Examples:
///   mesh diagnostics endpoints web.emojivoto.svc.cluster.local:80
///   mesh diagnostics endpoints -o json emoji-svc.emojivoto.svc.cluster.local:8080 10.96.0.12:80
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The authorities to look up, NAME:PORT
    #[arg(value_name = "AUTHORITY", required = true)]
    authorities: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Give up on the destination controller after this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = mesh_names::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    for authority in &args.authorities {
        if authority
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            bail!(
                "invalid authority {authority:?}: expected NAME:PORT, e.g. web.emojivoto.svc.cluster.local:80"
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let answers = runtime.block_on(async {
        let (client, url) = crate::client::client(global, args.timeout).await?;
        let ns = &global.control_plane_namespace;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let selector = format!("{CONTROL_PLANE_COMPONENT}={DESTINATION_COMPONENT}");
        let listed = crate::client::list_all(&pods, &ListParams::default().labels(&selector))
            .await
            .map_err(|e| anyhow::anyhow!("{} (at {url})", crate::client::describe(e)))?;
        let Some(pod) = listed.iter().find(|p| ready(p)) else {
            return Err(anyhow::Error::new(Failed(format!(
                "no ready {DESTINATION} pod in namespace {ns} to ask (mesh check tells why)"
            ))));
        };
        let target = Target::Pod {
            namespace: ns.clone(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            port: DESTINATION_ADMIN,
        };
        let scraper = Scraper::new(Some(client), args.timeout, 1)?;
        let mut answers = Vec::new();
        for authority in &args.authorities {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("authority", authority)
                .finish();
            let answer = scraper
                .get(&target, &format!("{ENDPOINTS_LOOKUP_PATH}?{query}"))
                .await
                .and_then(|text| {
                    serde_json::from_str::<Value>(&text).map_err(|e| format!("invalid answer: {e}"))
                });
            answers.push((authority.clone(), answer));
        }
        anyhow::Ok(answers)
    })?;
    let mut rows: Vec<Value> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for (authority, answer) in answers {
        match answer {
            Ok(answer) => {
                let endpoints = answer["endpoints"].as_array().cloned().unwrap_or_default();
                if endpoints.is_empty() {
                    failures.push(format!("No endpoints found for {authority}."));
                }
                rows.extend(endpoints.into_iter().map(|mut e| {
                    e["authority"] = Value::String(authority.clone());
                    e
                }));
            }
            Err(why) => failures.push(format!("{authority}: {}", why.trim())),
        }
    }
    let text = match args.output {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&rows)?),
        Format::Table => table(&rows),
    };
    crate::output::stdout(|out| out.write_all(text.as_bytes()))?;
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failed(failures.join("\n")).into())
    }
}

/// Linkerd's columns.
fn table(rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            ["namespace", "ip", "port", "pod", "service"]
                .iter()
                .map(|k| match &r[*k] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    crate::output::columns(&["NAMESPACE", "IP", "PORT", "POD", "SERVICE"], &cells)
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
