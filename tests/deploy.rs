//! docker-compose.yml and the Dockerfile cannot run on CI machines (no Docker engine), so this test
//! checks that they are coherent: services, files they mount, and the config the image runs with.

use std::path::Path;

use unscharf::config::Config;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn compose_file_is_coherent() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    assert!(services.contains_key("postgres") && services.contains_key("unscharf"));
    let pg = &doc["services"]["postgres"];
    assert_eq!(pg["environment"]["POSTGRES_DB"].as_str(), Some("crm"));
    assert!(
        pg["ports"].is_null(),
        "Postgres must not be published: unscharf is the only path"
    );
    for v in pg["volumes"].as_sequence().unwrap() {
        let src = v.as_str().unwrap().split(':').next().unwrap();
        assert!(root().join(src).is_file(), "{src} mounted but missing");
    }
    let u = &doc["services"]["unscharf"];
    assert_eq!(u["build"].as_str(), Some("."));
    assert_eq!(
        u["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(u["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|p| p.as_str() == Some("6432:6432")));
    let env = u["environment"].as_mapping().unwrap();
    // The catalog password in the compose file is the one sample/roles.sql gives the catalog role.
    let roles = std::fs::read_to_string(root().join("sample/roles.sql")).unwrap();
    let pw = env.get("UNSCHARF_CATALOG_PASSWORD").unwrap().as_str().unwrap();
    assert!(roles.contains(&format!("unscharf      LOGIN PASSWORD '{pw}'")));
    // The config the image runs with is valid and reads its secrets from the variables set here.
    let config = Config::load(&root().join("deploy/unscharf.compose.yaml")).unwrap();
    assert_eq!(config.upstream.host, "postgres");
    assert!(env.contains_key(config.catalog.password_env.as_deref().unwrap()));
    assert!(env.contains_key(config.pseudonym_key_env.as_str()));
}

#[test]
fn dockerfile_copies_what_exists() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for line in text.lines().filter(|l| l.starts_with("COPY") && !l.contains("--from")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root().join(src).exists(), "Dockerfile copies missing {src}");
        }
    }
    assert!(text.contains("USER unscharf"), "the proxy does not run as root");
}
