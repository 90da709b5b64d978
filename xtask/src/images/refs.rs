//! Image names, tags and users as `mesh install` renders them: the only place they are written
//! is the CLI's values and templates, so they are read from its output rather than repeated.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::spec::{ImageSpec, Source};

/// A container of the rendered control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub run_as_user: Option<u32>,
}

/// Every container (init containers included) of the Deployments `mesh install` renders.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub containers: Vec<Container>,
}

/// Runs `mesh install -o json` with the built `mesh`, looking at no cluster.
pub fn rendered(mesh: &Path) -> Result<Rendered> {
    let out = Command::new(mesh)
        .args(["install", "-o", "json", "--ignore-cluster"])
        .output()
        .with_context(|| format!("running {} install", mesh.display()))?;
    if !out.status.success() {
        bail!(
            "mesh install -o json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&out.stdout)
}

/// Reads the JSON stream (one object after another) `mesh install -o json` writes.
pub fn parse(json: &[u8]) -> Result<Rendered> {
    let mut rendered = Rendered::default();
    for object in serde_json::Deserializer::from_slice(json).into_iter::<Value>() {
        let object = object.context("mesh install -o json wrote invalid JSON")?;
        if object["kind"] != "Deployment" {
            continue;
        }
        let spec = &object["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                };
                rendered.containers.push(Container {
                    name: c["name"].as_str().unwrap_or_default().to_owned(),
                    image: c["image"].as_str().unwrap_or_default().to_owned(),
                    command: strings(&c["command"]),
                    args: strings(&c["args"]),
                    run_as_user: c["securityContext"]["runAsUser"]
                        .as_u64()
                        .and_then(|u| u32::try_from(u).ok()),
                });
            }
        }
    }
    if rendered.containers.is_empty() {
        bail!("mesh install -o json rendered no Deployment containers");
    }
    Ok(rendered)
}

impl Rendered {
    /// The first container named `name`.
    pub fn container(&self, name: &str) -> Result<&Container> {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("mesh install renders no container named {name:?}"))
    }

    /// The image reference and user for `spec`.
    pub fn image(&self, spec: &ImageSpec) -> Result<(String, u32)> {
        match spec.source {
            Source::Container(name) => {
                let c = self.container(name)?;
                if c.image.is_empty() {
                    bail!("container {name:?} has no image");
                }
                Ok((c.image.clone(), c.run_as_user.unwrap_or(spec.default_user)))
            }
            Source::BesideProxy(last) => {
                let proxy = self.container(super::spec::PROXY_CONTAINER)?;
                Ok((beside(&proxy.image, last)?, spec.default_user))
            }
        }
    }
}

/// `registry/org/other:tag` for `registry/org/<anything>:tag`.
pub fn beside(image: &str, last: &str) -> Result<String> {
    let (repo, tag) = image
        .rsplit_once(':')
        .filter(|(repo, tag)| !repo.is_empty() && !tag.contains('/'))
        .with_context(|| format!("image {image:?} has no tag"))?;
    let prefix = repo.rsplit_once('/').map(|(p, _)| format!("{p}/"));
    Ok(format!("{}{last}:{tag}", prefix.unwrap_or_default()))
}
