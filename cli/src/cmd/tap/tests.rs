use super::*;

#[test]
fn the_hint_gives_a_command_only_where_applying_it_replaces_the_pods() {
    let hint = tap_off_hint(Kind::StatefulSet, "db", "shop");
    assert!(
        hint.contains("for statefulset/db (its pods restart): kubectl get statefulset/db -n shop -o yaml | mesh inject --enable-tap - | kubectl apply -f -"),
        "{hint}"
    );
    let hint = tap_off_hint(Kind::CronJob, "report", "shop");
    assert!(hint.contains("for cronjob/report (from its next job): kubectl get cronjob/report"));
    // A Job's template cannot change, a ReplicaSet does not replace its pods, and a pod or a
    // service has no template of its own.
    for kind in [Kind::Job, Kind::ReplicaSet, Kind::Pod, Kind::Service] {
        let hint = tap_off_hint(kind, "x", "shop");
        assert!(!hint.contains("kubectl get"), "{kind}: {hint}");
        assert!(
            hint.contains("the annotation config.linkerd.io/enable-tap=true on its pod template"),
            "{hint}"
        );
    }
    assert!(hint.ends_with("\n  for a proxy run by hand: MESH_PROXY_TAP_ENABLED=true"));
}
