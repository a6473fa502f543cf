//! The release archives against the krew manifest, without a release build: the test build of
//! `kubectl-sts` is packed by `packaging/package.sh` (the script the release workflow runs) for
//! the host's platform, `.krew.yaml` is rendered the way krew-release-bot renders it, and then:
//! every platform's URI names the archive the script makes for that platform; the host archive
//! holds exactly what the manifest's `files` and `bin` name; its binary runs; and its completion
//! helper answers kubectl's completion protocol.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

const TAG: &str = "v0.0.0-test";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `packaging/package.sh ARGS…`: its stdout, trimmed; panics with its stderr when it fails.
fn package(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("packaging/package.sh"))
        .args(args)
        .env("KREW_ALLOW_MISSING", "1")
        .output()
        .expect("run bash packaging/package.sh");
    assert!(
        out.status.success(),
        "package.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn str_at<'a>(v: &'a serde_yaml::Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v:?}"))
}

#[test]
fn archives_match_the_krew_manifest() {
    let dist = tempfile::tempdir().expect("temp dir");
    let dist_path = dist.path().to_str().expect("utf-8 temp dir");
    let targets: Vec<String> = package(&["targets"]).lines().map(String::from).collect();
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml"))
        .expect("read release.yml");

    // The host's archive, from the test build of the binary (the layout does not depend on the
    // profile; on Linux the release target is musl, and this binary is glibc, which is fine here).
    let host_target = package(&["host-target"]);
    assert!(
        targets.contains(&host_target),
        "{host_target} in {targets:?}"
    );
    let archive = package(&[
        "pack",
        &host_target,
        env!("CARGO_BIN_EXE_kubectl-sts"),
        TAG,
        dist_path,
    ]);

    let manifest_text = package(&[
        "krew-manifest",
        root().join(".krew.yaml").to_str().expect("utf-8 path"),
        TAG,
        dist_path,
    ]);
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&manifest_text).expect("the rendered .krew.yaml is YAML");
    assert_eq!(str_at(&manifest, &["kind"]), "Plugin");
    assert_eq!(str_at(&manifest, &["spec", "version"]), TAG);
    let platforms = manifest["spec"]["platforms"]
        .as_sequence()
        .expect("spec.platforms");
    assert_eq!(
        platforms.len(),
        targets.len(),
        "one manifest platform per release target"
    );

    let mut host_entry = None;
    for target in &targets {
        assert!(
            workflow.contains(target.as_str()),
            "release.yml does not build {target}"
        );
        let platform = package(&["platform", target]);
        let (os, arch) = platform.split_once('/').expect("os/arch");
        let entry = platforms
            .iter()
            .find(|p| {
                str_at(p, &["selector", "matchLabels", "os"]) == os
                    && str_at(p, &["selector", "matchLabels", "arch"]) == arch
            })
            .unwrap_or_else(|| panic!("no manifest platform for {platform}"));
        let uri = str_at(entry, &["uri"]);
        assert!(uri.contains(&format!("/releases/download/{TAG}/")), "{uri}");
        let name = package(&["name", target, TAG]);
        assert_eq!(uri.rsplit('/').next(), Some(name.as_str()), "{platform}");
        if *target == *host_target {
            host_entry = Some(entry);
        }
    }
    let entry = host_entry.expect("the host's platform is in the manifest");

    // The rendered checksum is the archive's, and the .sha256 file says the same.
    let sha_file = std::fs::read_to_string(format!("{archive}.sha256")).expect("read .sha256");
    let name = Path::new(&archive)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("archive name");
    assert_eq!(
        sha_file.trim(),
        format!("{}  {name}", str_at(entry, &["sha256"]))
    );

    // Unpack as krew does, then install `files` into a plugin directory.
    let unpacked = dist.path().join("unpacked");
    let installed = dist.path().join("installed");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    std::fs::create_dir_all(&installed).expect("mkdir");
    let status = Command::new("tar")
        .args(["-xzf", &archive, "-C"])
        .arg(&unpacked)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf {archive}");
    let mut in_archive: Vec<String> = std::fs::read_dir(&unpacked)
        .expect("read unpacked")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    in_archive.sort();
    let mut from: Vec<String> = entry["files"]
        .as_sequence()
        .expect("files")
        .iter()
        .map(|f| {
            assert_eq!(str_at(f, &["to"]), ".");
            str_at(f, &["from"]).to_string()
        })
        .collect();
    from.sort();
    assert_eq!(
        in_archive, from,
        "the archive holds exactly the manifest's files"
    );
    for f in &from {
        std::fs::rename(unpacked.join(f), installed.join(f)).expect("install a file");
    }
    let bin = installed.join(str_at(entry, &["bin"]));
    assert!(bin.is_file(), "bin {} is installed", bin.display());

    let out = Command::new(&bin)
        .arg("version")
        .output()
        .expect("run kubectl-sts version");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kubectl-sts {}", env!("CARGO_PKG_VERSION"))
    );

    // kubectl runs the helper from PATH with the words after `sts`, the last one empty.
    let path = std::env::join_paths(std::iter::once(installed.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let out = Command::new(installed.join("kubectl_complete-sts"))
        .arg("")
        .env("PATH", path)
        .output()
        .expect("run kubectl_complete-sts");
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    for sub in ["inspect", "history", "orphans", "version"] {
        assert!(lines.contains(&sub.to_string()), "{sub} in {lines:?}");
    }
    assert_eq!(lines.last().map(String::as_str), Some(":4"));
}
