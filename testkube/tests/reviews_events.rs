//! TokenReview, events and namespace labels, through kube-rs.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, ServiceAccount};
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Config};
use mesh_testkube::FakeKube;
use serde_json::json;

async fn client(server: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig loads");
    Client::try_from(config).expect("a client")
}

async fn review(api: &Api<TokenReview>, token: &str, audiences: &[&str]) -> serde_json::Value {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: (!audiences.is_empty())
                .then(|| audiences.iter().map(|a| a.to_string()).collect()),
        },
        ..Default::default()
    };
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .expect("the review is answered");
    serde_json::to_value(answer.status.expect("a status")).expect("a JSON status")
}

#[tokio::test]
async fn token_reviews_follow_audiences_and_service_accounts() {
    let server = FakeKube::start().unwrap();
    let client = client(&server).await;
    let reviews: Api<TokenReview> = Api::all(client.clone());

    let token = server.issue_token("emojivoto", "web", &["identity.l5d.io"]);
    assert_eq!(token.split('.').count(), 3, "a JWT-shaped token");
    let sa: ServiceAccount = Api::namespaced(client.clone(), "emojivoto")
        .get("web")
        .await
        .unwrap();

    let status = review(&reviews, &token, &["identity.l5d.io", "other"]).await;
    assert_eq!(status["authenticated"], true);
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:emojivoto:web"
    );
    assert_eq!(status["user"]["uid"], json!(sa.metadata.uid.unwrap()));
    assert_eq!(
        status["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:emojivoto",
            "system:authenticated"
        ])
    );
    assert_eq!(status["audiences"], json!(["identity.l5d.io"]));

    // A review for another audience, or for the API server's when none is given, fails.
    let status = review(&reviews, &token, &["vault"]).await;
    assert_eq!(
        status.get("authenticated"),
        None,
        "false is omitted: {status}"
    );
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains(
            r#"token audiences ["identity.l5d.io"] is invalid for the target audiences ["vault"]"#
        ),
        "{error}"
    );
    let status = review(&reviews, &token, &[]).await;
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("kubernetes.default.svc")
    );

    // A token for the API server's audience passes a review without audiences.
    let api_token = server.issue_token("emojivoto", "web", &[]);
    let status = review(&reviews, &api_token, &[]).await;
    assert_eq!(status["authenticated"], true);
    assert_eq!(
        status["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );

    // Unknown and revoked tokens fail.
    let status = review(&reviews, "not-a-token", &["identity.l5d.io"]).await;
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .starts_with("[invalid bearer token")
    );
    assert!(server.revoke_token(&api_token));
    assert!(!server.revoke_token("not-a-token"));
    let status = review(&reviews, &api_token, &[]).await;
    assert_eq!(status.get("authenticated"), None);

    // A token dies with its service account, and a new one of the same name does not revive it.
    server.delete("ServiceAccount", "emojivoto", "web").unwrap();
    let status = review(&reviews, &token, &["identity.l5d.io"]).await;
    assert!(
        status["error"].as_str().unwrap().contains("not found"),
        "{status}"
    );
    server
        .apply_yaml(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: emojivoto}\n",
        )
        .unwrap();
    let status = review(&reviews, &token, &["identity.l5d.io"]).await;
    assert!(
        status["error"].as_str().unwrap().contains("does not match"),
        "{status}"
    );

    // An empty token is a bad request, as on a real server.
    let empty = TokenReview::default();
    let err = reviews
        .create(&PostParams::default(), &empty)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 400));
    // Reviews are not stored.
    let err = reviews.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 405));
}

#[tokio::test]
async fn the_event_recorder_creates_then_patches() {
    let server = FakeKube::start().unwrap();
    let client = client(&server).await;
    let recorder = Recorder::new(client.clone(), Reporter::from("mesh-identity"));
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ServiceAccount".into()),
        name: Some("web".into()),
        namespace: Some("emojivoto".into()),
        ..Default::default()
    };
    server
        .apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: emojivoto}\n")
        .unwrap();
    let event = Event {
        type_: EventType::Normal,
        reason: "IssuedLeafCertificate".into(),
        note: Some("issued a certificate".into()),
        action: "Issue".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events: Api<NewEvent> = Api::namespaced(client.clone(), "emojivoto");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let stored = &list.items[0];
    assert_eq!(stored.reason.as_deref(), Some("IssuedLeafCertificate"));
    assert_eq!(stored.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        server
            .objects("Event.events.k8s.io", Some("emojivoto"))
            .len(),
        1
    );

    // Core events are served too.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "emojivoto");
    let mut ev = k8s_openapi::api::core::v1::Event::default();
    ev.metadata.name = Some("web.1".into());
    ev.involved_object = reference;
    ev.reason = Some("Started".into());
    core.create(&PostParams::default(), &ev).await.unwrap();
    assert_eq!(server.objects("Event", Some("emojivoto")).len(), 1);
}

#[tokio::test]
async fn namespaces_are_labelled_with_their_name() {
    let server = FakeKube::start().unwrap();
    let namespaces: Api<Namespace> = Api::all(client(&server).await);
    let mut ns = Namespace::default();
    ns.metadata.name = Some("emojivoto".into());
    ns.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let labels = created.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "emojivoto");
    assert_eq!(labels["team"], "a");

    // Taking the label away on update puts it back.
    let mut next = namespaces.get("emojivoto").await.unwrap();
    next.metadata.labels = None;
    let replaced = namespaces
        .replace("emojivoto", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_eq!(
        replaced.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "emojivoto"
    );
    // Namespaces made on the way, and the built-in ones, have it too.
    for ns in ["default", "kube-system"] {
        let got = namespaces.get(ns).await.unwrap();
        assert_eq!(
            got.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
            ns
        );
    }
    namespaces
        .delete("emojivoto", &DeleteParams::default())
        .await
        .unwrap();
}
