use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{dep_info_sources, fresh};

fn touch(path: &Path, at: SystemTime) {
    std::fs::write(path, "x").unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

#[test]
fn dep_info_names_every_source_with_escaped_spaces() {
    let text = "/t/debug/mesh-proxy: /w/proxy/src/main.rs /w/my\\ dir/lib.rs\n\n";
    let sources = dep_info_sources(text);
    assert_eq!(
        sources,
        [
            Path::new("/w/proxy/src/main.rs"),
            Path::new("/w/my dir/lib.rs")
        ]
    );
    assert!(dep_info_sources("").is_empty());
}

#[test]
fn a_binary_is_fresh_until_a_source_is_newer_or_gone() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let (old, new) = (now - Duration::from_secs(60), now + Duration::from_secs(60));
    let binary = dir.path().join("mesh-proxy");
    let source = dir.path().join("src dir").join("main.rs");
    let lock = dir.path().join("Cargo.lock");
    std::fs::create_dir(source.parent().unwrap()).unwrap();
    touch(&binary, now);
    touch(&source, old);
    touch(&lock, old);
    let escaped = source.display().to_string().replace(' ', "\\ ");
    let dep_info = format!("{}: {escaped}\n", binary.display());
    let also = [lock.clone()];

    // No dep-info: cannot tell, so not fresh.
    assert!(!fresh(&binary, &also));
    std::fs::write(dir.path().join("mesh-proxy.d"), &dep_info).unwrap();
    assert!(fresh(&binary, &also));

    touch(&source, new);
    assert!(!fresh(&binary, &also), "an edited source");
    touch(&source, old);
    touch(&lock, new);
    assert!(!fresh(&binary, &also), "an edited Cargo.lock");
    touch(&lock, old);
    std::fs::remove_file(&source).unwrap();
    assert!(!fresh(&binary, &also), "a source that is gone");
    assert!(!fresh(&dir.path().join("absent"), &also));
}
