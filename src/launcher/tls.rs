//! Throwaway TLS material for `bazaar up --tls`: a fresh CA and one
//! certificate per node, written to `DATA_DIR/tls/`, so mutual TLS between
//! nodes can be tried with one flag.
//!
//! Every node certificate names `localhost`, `127.0.0.1`, `::1` and the
//! node itself, and may serve as both TLS server and TLS client (nodes dial
//! each other). Keys are written readable by their owner only. The CA key
//! is not kept: nothing can sign a new node into this cluster later, which
//! is the point of a throwaway CA.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bazaar_cluster::listener::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Directory of the generated material inside the data dir.
pub const TLS_DIR: &str = "tls";

/// Generates a CA and a certificate for each of `nodes` under
/// `data_dir/tls`, replacing earlier files; returns each node's files in
/// the order of `nodes`.
pub fn generate(data_dir: &Path, nodes: &[String]) -> anyhow::Result<Vec<TlsFiles>> {
    let dir = data_dir.join(TLS_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let ca_key = KeyPair::generate().context("cannot generate the ca key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bazaar throwaway cluster ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_path = dir.join("ca.pem");
    write_file(&ca_path, &ca_cert.pem(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut files = Vec::with_capacity(nodes.len());
    for node in nodes {
        let key = KeyPair::generate().context("cannot generate a node key")?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            node.clone(),
        ])?;
        params.distinguished_name.push(DnType::CommonName, node);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer)?;
        let cert_path = dir.join(format!("{node}.pem"));
        let key_path = dir.join(format!("{node}-key.pem"));
        write_file(&cert_path, &cert.pem(), false)?;
        write_file(&key_path, &key.serialize_pem(), true)?;
        files.push(TlsFiles {
            cert: cert_path,
            key: key_path,
            ca: ca_path.clone(),
        });
    }
    Ok(files)
}

/// The `bazaar node` flags naming `files`.
pub fn node_flags(files: &TlsFiles) -> Vec<String> {
    let path = |path: &PathBuf| path.display().to_string();
    vec![
        "--tls-cert".into(),
        path(&files.cert),
        "--tls-key".into(),
        path(&files.key),
        "--tls-ca".into(),
        path(&files.ca),
    ]
}

fn write_file(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_cluster::listener::tls::ClusterTls;

    #[test]
    fn generated_material_loads_as_mutual_tls() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path(), &["n1".into(), "n2".into()]).unwrap();
        assert_eq!(files.len(), 2);
        for node in &files {
            ClusterTls::load(node).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0].key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
