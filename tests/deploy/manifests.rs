//! What the deployment in `deploy/` says, read the way Kubernetes and the
//! image would read it: the resources `deploy/k8s/kustomization.yaml`
//! lists, the pods each workload makes (a StatefulSet's `NAME-0..N-1`, a
//! Deployment's `NAME-<i>` standing for its generated names), each pod's
//! container command (the image's `ENTRYPOINT` and the manifest's `args`)
//! and environment (the image's `ENV`, then the manifest's `env` with
//! `fieldRef`, `secretKeyRef` and `$(VAR)` expansion as the kubelet does
//! it), and the headless Service's DNS name and which pods it selects.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every resource of `deploy/k8s`, in kustomization order.
pub fn resources() -> Vec<Value> {
    let dir = deploy_dir().join("k8s");
    let kustomization = read_yaml(&dir.join("kustomization.yaml"));
    let files = kustomization["resources"]
        .as_sequence()
        .expect("kustomization lists resources");
    let mut resources = Vec::new();
    for file in files {
        let path = dir.join(file.as_str().expect("resource is a file name"));
        let text = fs::read_to_string(&path).expect("read manifest");
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).expect("manifest is YAML");
            if !value.is_null() {
                resources.push(value);
            }
        }
    }
    resources
}

fn read_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("read {path:?}: {err}"));
    serde_norway::from_str(&text).unwrap_or_else(|err| panic!("parse {path:?}: {err}"))
}

/// The one resource of `kind` named `name`.
pub fn find<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["kind"].as_str() == Some(kind) && r["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

/// A string field, or a panic naming it.
pub fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// What the image gives every container: `ENTRYPOINT` and `ENV` of the
/// last stage of `deploy/Dockerfile`.
#[derive(Debug)]
pub struct Image {
    /// The `ENTRYPOINT` (exec form).
    pub entrypoint: Vec<String>,
    /// `ENV` lines, in order.
    pub env: Vec<(String, String)>,
    /// `USER`.
    pub user: String,
}

/// Reads `deploy/Dockerfile`'s last stage.
pub fn image() -> Image {
    let text = fs::read_to_string(deploy_dir().join("Dockerfile")).expect("read Dockerfile");
    let last_stage = text.rsplit("\nFROM ").next().expect("a FROM line");
    let mut image = Image {
        entrypoint: Vec::new(),
        env: Vec::new(),
        user: String::new(),
    };
    for line in last_stage.lines() {
        if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            image.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec form");
        } else if let Some(rest) = line.strip_prefix("ENV ") {
            let (key, value) = rest.split_once('=').expect("ENV KEY=VALUE");
            image.env.push((key.to_string(), value.to_string()));
        } else if let Some(rest) = line.strip_prefix("USER ") {
            image.user = rest.trim().to_string();
        }
    }
    image
}

/// One pod as the kubelet would start it.
#[derive(Debug, Clone)]
pub struct Pod {
    /// `metadata.name`.
    pub name: String,
    /// The template's labels.
    pub labels: BTreeMap<String, String>,
    /// The template's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The (only) container.
    pub container: Value,
}

impl Pod {
    /// The pods `workload` (a StatefulSet or a Deployment) makes.
    pub fn of(workload: &Value) -> Vec<Pod> {
        let name = text(&workload["metadata"]["name"], "metadata.name");
        let replicas = workload["spec"]["replicas"].as_u64().expect("replicas");
        let template = &workload["spec"]["template"];
        let strings = |value: &Value| -> BTreeMap<String, String> {
            value
                .as_mapping()
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| (text(k, "key").to_string(), text(v, "value").to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = template["spec"]["containers"]
            .as_sequence()
            .expect("containers");
        assert_eq!(containers.len(), 1, "{name}: one container per pod");
        (0..replicas)
            .map(|i| Pod {
                name: match workload["kind"].as_str() {
                    Some("StatefulSet") => format!("{name}-{i}"),
                    _ => format!("{name}-pod{i}"),
                },
                labels: strings(&template["metadata"]["labels"]),
                annotations: strings(&template["metadata"]["annotations"]),
                container: containers[0].clone(),
            })
            .collect()
    }

    /// The container's environment: the image's, then the manifest's, with
    /// `$(VAR)` replaced by variables defined before it, `fieldRef`s from
    /// this pod, secrets from `secrets` (`secret/key`; a missing optional
    /// one is left out).
    pub fn env(
        &self,
        image: &Image,
        pod_ip: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = image.env.clone();
        let vars = self.container["env"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for var in &vars {
            let name = text(&var["name"], "env name").to_string();
            let value = if let Some(value) = var["value"].as_str() {
                expand(value, &env)
            } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => self.name.clone(),
                    "status.podIP" => pod_ip.to_string(),
                    other => panic!("fieldRef {other} is not simulated"),
                }
            } else if let Some(secret) = var["valueFrom"]["secretKeyRef"].as_mapping() {
                let key = format!(
                    "{}/{}",
                    text(&secret["name"], "secret name"),
                    text(&secret["key"], "secret key")
                );
                match secrets.get(&key) {
                    Some(value) => value.clone(),
                    None if secret["optional"].as_bool() == Some(true) => continue,
                    None => panic!("{}: secret {key} is required", self.name),
                }
            } else {
                panic!("{}: env {name} has no value", self.name);
            };
            env.retain(|(key, _)| *key != name);
            env.push((name, value));
        }
        env
    }

    /// The container's command line: the image's entrypoint and the
    /// manifest's `args`, expanded against `env`.
    pub fn command(&self, image: &Image, env: &[(String, String)]) -> Vec<String> {
        let args = self.container["args"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        image
            .entrypoint
            .iter()
            .cloned()
            .chain(args.iter().map(|arg| expand(text(arg, "arg"), env)))
            .collect()
    }

    /// `(volume, mountPath)` of the container's mounts.
    pub fn mounts(&self) -> Vec<(String, String)> {
        let mounts = self.container["volumeMounts"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        mounts
            .iter()
            .map(|m| {
                (
                    text(&m["name"], "mount name").to_string(),
                    text(&m["mountPath"], "mountPath").to_string(),
                )
            })
            .collect()
    }

    /// Whether `selector` (a `matchLabels`-style map) selects this pod.
    pub fn matches(&self, selector: &Value) -> bool {
        selector.as_mapping().is_some_and(|map| {
            map.iter()
                .all(|(k, v)| self.labels.get(text(k, "label")).map(String::as_str) == v.as_str())
        })
    }
}

/// `$(VAR)` references to variables of `env` replaced by their values;
/// unknown ones stay as written (as the kubelet leaves them).
pub fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = value.to_string();
    for (key, val) in env {
        out = out.replace(&format!("$({key})"), val);
    }
    out
}
