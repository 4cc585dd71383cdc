//! Every manifest under fixtures/manifests/invalid/ is refused by
//! `berth plan` with exit 1 and a message that names the file, line and
//! column and says what would be right.

mod support;

use support::Berth;

/// Runs `berth plan` on one invalid fixture and checks every expected line
/// (`{file}` stands for the path as passed) appears on stderr.
fn refused(name: &str, expected: &[&str]) {
    let file = format!("fixtures/manifests/invalid/{name}.toml");
    let berth = Berth::new();
    let run = berth.run(&["plan", "-f", &file]);
    let stderr = run.fails_with(1);
    for e in expected {
        let want = e.replace("{file}", &file);
        assert!(stderr.contains(&want), "{name}: expected\n  {want}\nin stderr:\n{stderr}");
    }
    assert!(!berth.store_root().exists(), "{name}: a refused manifest must not create the store");
}

macro_rules! invalid {
    ($($name:ident: [$($line:expr),+ $(,)?];)+) => {
        $(#[test] fn $name() { refused(stringify!($name), &[$($line),+]); })+
    };
}

invalid! {
    unknown_key: ["berth: {file}:3:1: unknown key \"imgae\" (did you mean \"image\"?)"];
    unknown_nested_key: ["berth: {file}:4:12: unknown key \"memroy\" (did you mean \"memory\"?)"];
    unknown_from: ["berth: {file}:6:8: env \"api\" is built from \"bsae\", which is not declared (did you mean \"base\"?)"];
    unknown_depends_on: ["berth: {file}:7:15: env \"api\" depends on \"dbb\", which is not declared (did you mean \"db\"?)"];
    from_cycle: ["berth: {file}:6:8: `from` forms a cycle: a -> b -> a; break it by removing one of these links"];
    depends_cycle: ["berth: {file}:12:15: `depends_on` forms a cycle: a -> b -> c -> a"];
    bad_size: ["berth: {file}:4:21: bad size \"12 parsecs\": the unit must be one of B, KiB, MiB, GiB, TiB"];
    bad_port: ["berth: {file}:4:21: bad port mapping \"70000:80\": \"70000\" is not a port between 1 and 65535; expected \"[ADDR:]HOST:CONTAINER[/tcp|/udp]\""];
    bad_duration: ["berth: {file}:4:39: bad duration \"5\": expected a number with a unit (ms, s, m, h)"];
    duplicate_host_port: ["berth: {file}:8:10: host port 127.0.0.1:8080 is already published by env \"web\" on line 4; choose another host port"];
    image_and_bootstrap: ["berth: {file}:4:13: env \"api\" sets both `image` and `bootstrap`; keep one of `image`, `bootstrap`, `from` or `build` as its base"];
    no_base: ["berth: {file}:2:1: env \"api\" has no base; set one of `image` (as in image = \"debian:bookworm\"), `bootstrap`, `from` or `build` (a Dockerfile, as in build = \"svc\")"];
    copy_outside: ["berth: {file}:4:17: copy source \"../../../Cargo.toml\" is outside the project directory"];
    copy_missing: ["berth: {file}:4:17: copy source \"no-such-dir\" does not exist in the project directory"];
    bad_restart: ["berth: {file}:4:11: bad restart policy \"sometimes\": expected \"no\", \"on-failure\", \"on-failure:N\" (N at least 1), \"always\" or \"unless-stopped\""];
    bad_image_ref: ["berth: {file}:3:9: bad image reference \"Debian:12\": the name part \"Debian\" must be lower-case letters and digits"];
    toml_syntax: ["berth: {file}:3:17: invalid basic string"];
    depends_on_self: ["berth: {file}:4:15: env \"api\" depends on itself; name another env"];
    bad_env_var: ["berth: {file}:4:9: bad environment variable name \"APP-MODE\""];
    relative_dest: ["berth: {file}:4:46: copy destination \"srv/app\" must be an absolute path in the container"];
    bad_project: ["berth: {file}:2:11: bad project name \"My Shop!\": use lower-case letters, digits"];
    container_port_clash: ["berth: {file}:8:10: container port 8000 is also published by env \"web\" on line 4; all envs of a project share one network namespace"];
    many_errors: [
        "berth: {file}:4:11: workdir \"srv\" must be an absolute path",
        "berth: {file}:5:8: bad user \"a b\"",
        "berth: {file}:6:19: bad cpus limit",
        "berth: {file}:6:29: bad pids limit",
    ];
    no_envs: ["berth: {file}:1:1: no environments declared"];
    decimal_mode: ["berth: {file}:4:58: bad mode 644: expected octal permission bits, as in mode = 0o644"];
    ports_on_host_network: ["berth: {file}:5:10: ports have no effect with network = \"host\""];
    zero_interval: ["berth: {file}:4:37: health interval must be longer than 0"];
    env_name_underscore: ["berth: {file}:2:6: bad env name \"my_api\": env names become host names"];
    three_bases: ["berth: {file}:8:8: env \"api\" sets `image`, `bootstrap` and `from`; keep one"];
}
