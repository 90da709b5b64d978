//! Token reviews: asking the API server who a service-account token belongs to.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};

/// What the API server says about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// The token is valid: its user and the audiences it was accepted for.
    Authenticated {
        username: String,
        audiences: Vec<String>,
    },
    /// The token is not valid, with the API server's error if it gave one.
    Rejected { error: Option<String> },
}

/// Why a review could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The API server did not answer in time.
    #[error("the token review took longer than {0:?}")]
    Timeout(Duration),
    /// The API server refused or failed the request.
    #[error("the token review failed: {0}")]
    Api(#[source] kube::Error),
}

/// Reviews tokens; the service uses the API server, tests a table.
pub trait TokenReviewer: Send + Sync + 'static {
    fn review(&self, token: String) -> impl Future<Output = Result<Review, ReviewError>> + Send;
}

/// Reviews through `authentication.k8s.io/v1` `TokenReview`, for the identity audience.
#[derive(Clone)]
pub struct KubeReviewer {
    api: Api<TokenReview>,
    timeout: Duration,
}

impl KubeReviewer {
    pub fn new(client: kube::Client, timeout: Duration) -> KubeReviewer {
        KubeReviewer {
            api: Api::all(client),
            timeout,
        }
    }
}

impl TokenReviewer for KubeReviewer {
    async fn review(&self, token: String) -> Result<Review, ReviewError> {
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token),
                audiences: Some(vec![mesh_names::identity::TOKEN_AUDIENCE.to_owned()]),
            },
            ..TokenReview::default()
        };
        let created = tokio::time::timeout(
            self.timeout,
            self.api.create(&PostParams::default(), &request),
        )
        .await
        .map_err(|_| ReviewError::Timeout(self.timeout))?
        .map_err(ReviewError::Api)?;
        Ok(review_of(created))
    }
}

/// The answer in a created `TokenReview`.
pub fn review_of(review: TokenReview) -> Review {
    let status = review.status.unwrap_or_default();
    let error = status.error.filter(|e| !e.is_empty());
    match (status.authenticated, status.user) {
        (Some(true), Some(user)) if error.is_none() => Review::Authenticated {
            username: user.username.unwrap_or_default(),
            audiences: status.audiences.unwrap_or_default(),
        },
        _ => Review::Rejected { error },
    }
}
