//! Whole compose files converted: what each key becomes, and that the
//! result checks as a manifest.

use super::*;

fn convert_text(compose: &str, files: &[(&str, &str)]) -> Result<Converted, ComposeError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, compose).unwrap();
    convert(&file, dir.path(), Some("shop"))
}

const SHOP: &str = r#"
name: ignored-when-given
services:
  web_app:
    image: "nginx:${TAG:-1.25}"
    command: sh -c 'echo "hi there" && exec nginx'
    environment:
      MODE: test
      FROM_SHELL:
    env_file: [web.env]
    ports: ["8080:80", {target: 443, published: 8443, host_ip: 127.0.0.1}]
    expose: ["9000"]
    depends_on:
      db: {condition: service_healthy}
      seed: {condition: service_completed_successfully}
    volumes: ["static:/srv/static:ro", "./conf:/etc/nginx/conf.d", "/anon"]
    working_dir: /srv
    user: "101:101"
    restart: on-failure:3
    mem_limit: 256m
    cpus: 0.5
    pids_limit: 100
    labels: [tier=front]
    networks: [front]
    cap_add: [NET_ADMIN]
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      retries: 30
    deploy: {resources: {limits: {memory: 512M, cpus: "1.5"}}, replicas: 2}
    volumes: [{type: volume, source: pgdata, target: /var/lib/postgresql/data}]
    tmpfs: /run
  seed:
    build: {context: ./seed, dockerfile: Dockerfile.seed}
    entrypoint: ["/seed.sh"]
networks: {front: {}}
volumes: {static: {}, pgdata: {external: true}}
"#;

#[test]
fn a_full_file_converts_key_by_key_and_checks() {
    let c = convert_text(
        SHOP,
        &[
            ("web.env", "# web\nFROM_FILE=1\nMODE=overridden-by-environment\n"),
            ("seed/Dockerfile.seed", "FROM scratch\n"),
        ],
    )
    .unwrap();
    let t = &c.text;
    assert_eq!(c.project, "shop");
    assert_eq!(c.envs, 3);
    for want in [
        "project = \"shop\"",
        "[env.web-app]",
        "image = \"nginx:1.25\"",
        r#"cmd = ["sh", "-c", "echo \"hi there\" && exec nginx"]"#,
        r#"env = { FROM_FILE = "1", MODE = "test" }"#,
        r#"ports = ["0.0.0.0:8080:80", "127.0.0.1:8443:443"]"#,
        r#"depends_on = ["db", "seed"]"#,
        r#"volumes = ["static:/srv/static:ro", "./conf:/etc/nginx/conf.d"]"#,
        "workdir = \"/srv\"",
        "user = \"101:101\"",
        "restart = \"on-failure:3\"",
        r#"limits = { memory = "256m", cpus = 0.5, pids = 100 }"#,
        r#"labels = { tier = "front" }"#,
        r#"cap_add = ["NET_ADMIN"]"#,
        "# compose: service \"web_app\" is env \"web-app\"",
        "# compose: environment: FROM_SHELL is passed from the shell",
        "# compose: volumes: /anon: an anonymous volume",
        "# compose: depends_on: seed (service_completed_successfully)",
        "# compose: expose: not carried over",
        "# compose: networks: not carried over",
        "# compose: top-level networks",
        "# compose: volume pgdata is external",
        "[env.db]",
        r#"health = { cmd = "pg_isready -U postgres", interval = "2s", retries = 30 }"#,
        r#"limits = { memory = "512M", cpus = 1.5 }"#,
        "# compose: deploy.replicas: not carried over",
        r#"volumes = ["pgdata:/var/lib/postgresql/data"]"#,
        r#"tmpfs = ["/run"]"#,
        "[env.seed]",
        r#"build = { context = "./seed", dockerfile = "Dockerfile.seed" }"#,
        r#"entrypoint = ["/seed.sh"]"#,
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    assert!(!t.contains("service_healthy) has no health check"), "{t}");
    assert!(!t.contains("image = \"shop-seed\"") && !t.contains("berth build -t"), "{t}");
    assert_eq!(c.notes, t.matches("# compose:").count());
}

#[test]
fn bad_files_are_named_with_where_and_what() {
    let err = |compose: &str| convert_text(compose, &[]).unwrap_err().to_string();
    let e = err("services:\n  web:\n    image: [unclosed\n");
    assert!(e.contains("compose.yaml:") && e.contains("not a YAML file"), "{e}");
    let e = err("version: '3'\n");
    assert!(e.contains("services: must be a mapping of services"), "{e}");
    let e = err("services:\n  web:\n    command: echo hi\n");
    assert!(e.contains("services.web: has neither image nor build"), "{e}");
    let e = err("services:\n  web:\n    image: a\n    ports: '80'\n");
    assert!(e.contains("services.web.ports: must be a list"), "{e}");
    let e = err("services:\n  web:\n    image: a\n    depends_on: [dbb]\n");
    assert!(e.contains("services.web.depends_on: names \"dbb\""), "{e}");
    let e = err("services:\n  web:\n    image: \"${REQUIRED_TAG:?set the tag}\"\n");
    assert!(e.contains("required variable REQUIRED_TAG is not set: set the tag"), "{e}");
    let e = err("services:\n  a_b: {image: x}\n  a-b: {image: y}\n");
    assert!(e.contains("rename one"), "{e}");
}

#[test]
fn dotenv_feeds_interpolation_and_unset_variables_are_reported() {
    let c = convert_text(
        "services:\n  web:\n    image: \"app:${APP_TAG}\"\n    environment: [\"X=${NOT_SET_ANYWHERE}\"]\n",
        &[(".env", "APP_TAG=7\n")],
    )
    .unwrap();
    assert!(c.text.contains("image = \"app:7\""), "{}", c.text);
    assert_eq!(c.unset, ["NOT_SET_ANYWHERE"]);
}

#[test]
fn paths_are_rebased_when_the_manifest_goes_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("compose");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("docker-compose.yml");
    std::fs::write(&file, "services:\n  web:\n    image: a\n    volumes: ['./data:/data']\n").unwrap();
    let c = convert(&file, dir.path(), None).unwrap();
    let want = format!("\"{}:/data\"", sub.join("data").display());
    assert!(c.text.contains(&want), "want {want} in:\n{}", c.text);
    assert_eq!(c.project, manifest::default_project(dir.path()));
}

#[test]
fn build_becomes_the_build_key() {
    let dockerfile = "FROM scratch AS base\nARG V\nFROM base AS prod\n";
    let compose = r#"
services:
  short:
    build: ./app
  full:
    image: team/full:2
    build:
      context: app
      dockerfile: Dockerfile
      target: prod
      args: {V: "1", FROM_SHELL: null}
      cache_from: [x]
"#;
    let c = convert_text(compose, &[("app/Dockerfile", dockerfile)]).unwrap();
    let t = &c.text;
    for want in [
        "[env.short]\nbuild = \"./app\"\n",
        r#"build = { context = "./app", dockerfile = "Dockerfile", target = "prod", args = { V = "1" } }"#,
        "# compose: build.args: FROM_SHELL has no value",
        "# compose: build.cache_from: not carried over",
        "# compose: image: team/full:2 names the built image in Compose; berth tags it shop/full:latest",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    assert!(!t.contains("image = "), "build and image are one or the other in berth.toml: {t}");

    let e = convert_text("services:\n  web:\n    build: {context: nowhere}\n", &[]).unwrap_err().to_string();
    assert!(e.contains("services.web.build: no Dockerfile at ") && e.contains("nowhere/Dockerfile"), "{e}");
}
